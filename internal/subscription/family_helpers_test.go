package subscription

import (
	"context"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/eventtx"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// The two ways the processor applies events; every family test runs on
// both (forEachPath): each event in its own transaction (Handle), or a
// batch in one transaction with a savepoint per event (HandleBatch, taken
// even for one event).
var famPaths = []struct {
	name  string
	batch bool
}{{"per-event", false}, {"batch", true}}

func forEachPath(t *testing.T, f func(t *testing.T, batch bool)) {
	t.Helper()
	for _, p := range famPaths {
		t.Run(p.name, func(t *testing.T) { f(t, p.batch) })
	}
}

// testClock is a settable clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *testClock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// famEnv is the processor's event handler over the purchase and
// subscription families, as processorservice wires them, on its own
// database.
type famEnv struct {
	t     *testing.T
	db    *bun.DB
	h     *eventtx.Handler
	fam   *Family
	reg   *prometheus.Registry
	clock *testClock
	batch bool
}

// newFamEnv wires the families on bdb with fetcher f.
func newFamEnv(t *testing.T, bdb *bun.DB, f Fetcher, batch bool) *famEnv {
	t.Helper()
	e := &famEnv{t: t, db: bdb, reg: prometheus.NewRegistry(), clock: &testClock{now: t0.Add(365 * day)}, batch: batch}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := NewMetrics(e.reg)
	fam, err := NewFamily(Config{Now: e.clock.Now}, f, m, log)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := purchase.NewFamily(purchase.Config{Now: e.clock.Now, Subscriptions: fam}, purchase.NewMetrics(e.reg), log)
	if err != nil {
		t.Fatal(err)
	}
	cfg := eventtx.Config{Now: e.clock.Now}
	if batch {
		cfg.Batch = eventtx.BatchSetBasedAlways
	}
	if e.h, err = eventtx.New(bdb, cfg, log, pf, fam.EventFamily()); err != nil {
		t.Fatal(err)
	}
	e.fam = fam
	return e
}

// deliver hands evs to the handler on the env's path: one by one, or as
// one batch.
func (e *famEnv) deliver(evs ...stripeevent.Event) []handling.Result {
	e.t.Helper()
	ctx := context.Background()
	if e.batch {
		return e.h.HandleBatch(ctx, evs)
	}
	res := make([]handling.Result, len(evs))
	for i, ev := range evs {
		res[i].Outcome, res[i].Err = e.h.Handle(ctx, ev)
	}
	return res
}

// mustDeliver delivers evs and fails on any error.
func (e *famEnv) mustDeliver(evs ...stripeevent.Event) []handling.Outcome {
	e.t.Helper()
	out := make([]handling.Outcome, len(evs))
	for i, r := range e.deliver(evs...) {
		if r.Err != nil {
			e.t.Fatalf("%s %s: %v", evs[i].Type, evs[i].ID, r.Err)
		}
		out[i] = r.Outcome
	}
	return out
}

// stripeEvent wraps a payload as the runtime delivers it.
func stripeEvent(t testing.TB, payload []byte) stripeevent.Event {
	t.Helper()
	return testenv.Delivered(t, payload)
}

// rawEvt is payloadOf as the runtime delivers it.
func rawEvt(t testing.TB, shape, typ, id string, created time.Time, edit func(map[string]any)) stripeevent.Event {
	t.Helper()
	return stripeEvent(t, payloadOf(t, shape, typ, id, created, edit))
}

// fixtureIDs are the Stripe ids of the fixtures' story that renamed makes
// unique, so one database holds many runs of it.
var fixtureIDs = regexp.MustCompile(`"((?:sub_1QFixMembership|in_|ch_|pi_|evt_|cs_test_|inpay_|du_|re_)[A-Za-z0-9_]*)"`)

// renamed gives every fixture id of payload the suffix _<n>.
func renamed(payload []byte, n int) []byte {
	return fixtureIDs.ReplaceAll(payload, []byte(`"${1}_`+strconv.Itoa(n)+`"`))
}

// outboxKinds lists the subscription events of subscription id, oldest
// first, by kind.
func outboxKinds(t testing.TB, idb bun.IDB, id string) []string {
	t.Helper()
	var rows []model.Outbox
	if err := idb.NewSelect().Model(&rows).Where("aggregate_id = ?", AggregateID(id)).OrderExpr("created_at, id").
		Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	kinds := make([]string, len(rows))
	for i, r := range rows {
		kinds[i] = r.Subject[len(SubjectPrefix):]
	}
	return kinds
}

// mustVerifyLedger fails on any ledger difference.
func mustVerifyLedger(t testing.TB, bdb *bun.DB) {
	t.Helper()
	d, err := ledger.Verify(context.Background(), bdb)
	if err != nil {
		t.Fatal(err)
	}
	if d != nil {
		t.Fatal(d)
	}
}

// balance is the stored balance of an account, 0 when it does not exist.
func balance(t testing.TB, idb bun.IDB, owner, currency string, kind ledger.Kind) int64 {
	t.Helper()
	var bs []int64
	if err := idb.NewRaw(`SELECT balance FROM ledger_accounts WHERE owner = ? AND currency = ? AND kind = ?`,
		owner, currency, string(kind)).Scan(context.Background(), &bs); err != nil {
		t.Fatal(err)
	}
	if len(bs) == 0 {
		return 0
	}
	return bs[0]
}

// metricOf reads one series of the env's registry.
func (e *famEnv) metricOf(name string, labels map[string]string) float64 {
	e.t.Helper()
	return testenv.Metric(e.t, e.reg, name, labels)
}

// rawRefund is charge.refunded of a charge of amount with refunded
// refunded so far, as Stripe sends it for any charge.
func rawRefund(t testing.TB, id string, at time.Time, charge, pi string, amount, refunded int64) stripeevent.Event {
	t.Helper()
	b, err := stripefixture.ChargeRefundedEvent(stripefixture.Meta{EventID: id, Created: at},
		stripefixture.Charge{ChargeID: charge, PaymentIntentID: pi, Amount: amount, Refunds: []stripefixture.Refund{{Amount: refunded}}})
	if err != nil {
		t.Fatal(err)
	}
	return stripeEvent(t, b)
}

// rawDispute is charge.dispute.created or .closed of a charge.
func rawDispute(t testing.TB, typ, id string, at time.Time, charge, pi string, amount int64, status string) stripeevent.Event {
	t.Helper()
	b, err := stripefixture.DisputeEvent(typ, stripefixture.Meta{EventID: id, Created: at},
		stripefixture.Dispute{DisputeID: "du_" + charge, ChargeID: charge, PaymentIntentID: pi, Amount: amount, Status: status})
	if err != nil {
		t.Fatal(err)
	}
	return stripeEvent(t, b)
}
