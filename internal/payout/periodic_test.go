package payout_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/lease"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

func (e *env) job(t *testing.T, r *payout.Runner) *payout.Job {
	t.Helper()
	cfg := e.config()
	cfg.VerifyInterval = time.Nanosecond // every round
	return &payout.Job{DB: e.db, Runner: r, Stripe: e.stripe, Ledger: ledger.Config{Hold: 0}, Config: cfg, Metrics: e.metrics, Log: e.log}
}

// One round releases the held sales, pays them, and sets the health,
// reconcile and verification gauges; a ledger that no longer verifies sets
// the verification gauge.
func TestJobRound(t *testing.T) {
	e := newEnv(t)
	e.payee(t, "alice")
	e.earnHeld(t, "alice", 800)
	j := e.job(t, e.runner(t, nil))
	if err := j.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := e.payoutOf(t, "alice"); p.Status != model.PayoutPaid || p.AmountCents != 800 {
		t.Fatalf("payout = %+v", p)
	}
	metric := func(name string, labels map[string]string) float64 { return testenv.Metric(t, e.reg, name, labels) }
	if metric("paystream_ledger_releases_total", nil) != 1 || metric("paystream_ledger_verify_difference", nil) != 0 ||
		metric("paystream_ledger_verify_runs_total", map[string]string{"outcome": "ok"}) != 1 ||
		metric("paystream_payouts_runs_total", map[string]string{"outcome": "ok"}) != 1 ||
		metric("paystream_payouts_last_success_timestamp_seconds", nil) == 0 {
		t.Fatal("gauges after a clean round are wrong")
	}
	if _, err := e.db.NewRaw(`UPDATE ledger_accounts SET balance = balance + 1 WHERE owner = 'creator:alice' AND kind = 'paid_out'`).
		Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := j.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if metric("paystream_ledger_verify_difference", nil) != 1 || metric("paystream_ledger_verify_runs_total", map[string]string{"outcome": "difference"}) != 1 {
		t.Fatal("a ledger that does not verify did not set the gauge")
	}
}

// Two processor instances run the periodic job under one lease: while the
// holder's round hangs (after Stripe answered, before the commit) the
// other does not run; when the holder crashes, the other takes over once
// the lease expires and resumes its payouts with the same keys: one
// transfer per payee.
func TestPeriodicCrashedLeaseHolder(t *testing.T) {
	const payees, interval = 10, 300 * time.Millisecond
	e := newEnv(t)
	for n := range payees {
		e.payee(t, creatorN(n))
		e.earn(t, creatorN(n), 500)
	}
	js := testenv.StartNATS(t).JetStream(t)
	newLease := func(holder string) *lease.KV {
		l, err := lease.NewKV(js, payout.LeaseBucket, interval, holder)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	var hung atomic.Int32
	holder := e.runner(t, nil, payout.WithFault(func(ctx context.Context, s payout.Step, _ uuid.UUID) error {
		if s == payout.StepAfterAnswer {
			hung.Add(1)
			<-ctx.Done() // hangs until the process dies
			return ctx.Err()
		}
		return nil
	}))
	hctx, crash := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	start := func(ctx context.Context, j *payout.Job, l *lease.KV) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := payout.Periodic(ctx, interval, j, l); err != nil {
				t.Error(err)
			}
		}()
	}
	start(hctx, e.job(t, holder), newLease("holder"))
	testenv.Eventually(t, 10*time.Second, "the holder's round to hang", func() bool { return hung.Load() > 0 })

	octx, stop := context.WithCancel(context.Background())
	defer func() { stop(); wg.Wait() }()
	start(octx, e.job(t, e.runner(t, nil)), newLease("other"))
	time.Sleep(5 * interval)
	for _, p := range e.payouts(t) {
		if p.Status == model.PayoutPaid {
			t.Fatal("the other instance ran while the holder held the lease")
		}
	}
	crash()
	testenv.Eventually(t, 20*time.Second, "the other instance to pay everyone", func() bool {
		ps := e.payouts(t)
		if len(ps) < payees {
			return false
		}
		for _, p := range ps {
			if p.Status != model.PayoutPaid {
				return false
			}
		}
		return true
	})
	e.noDuplicates(t)
	if n := len(e.fake.Transfers()); n != payees {
		t.Fatalf("%d transfers for %d payees", n, payees)
	}
	e.mustVerify(t)
}
