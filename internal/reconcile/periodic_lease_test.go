package reconcile_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paystream/paystream/internal/lease"
	"github.com/paystream/paystream/internal/reconcile"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

// overlapLister counts the runs that list at the same time.
type overlapLister struct {
	active, overlaps, runs atomic.Int64
	hold                   time.Duration
}

func (l *overlapLister) ListEvents(ctx context.Context, _ reconcile.Query, fn func(reconcile.Listed) error) error {
	if l.active.Add(1) > 1 {
		l.overlaps.Add(1)
	}
	defer l.active.Add(-1)
	l.runs.Add(1)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(l.hold):
	}
	return fn(reconcile.Listed{ID: "evt_lease", Type: "charge.refunded", Raw: json.RawMessage(`{}`)})
}

// periodicInstance runs Periodic as one processor instance would: its own
// connection, its own lease holder name and registry. stop ends it.
type periodicInstance struct {
	reg  *prometheus.Registry
	stop func()
}

func startPeriodic(t *testing.T, n *testenv.NATS, name string, interval time.Duration, lister reconcile.Lister) periodicInstance {
	t.Helper()
	js, err := streams.NewJetStream(n.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	elector, err := lease.NewKV(js, reconcile.LeaseBucket, interval, name)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg := baseConfig()
	cfg.Since = time.Hour
	cfg.Metrics = reconcile.NewMetrics(reg)
	cfg.Lease = elector
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- reconcile.Periodic(ctx, interval, cfg, lister, &recorder{}, testLogger(t)) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s: Periodic = %v", name, err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("%s: Periodic did not stop", name)
			}
		})
	}
	t.Cleanup(stop)
	return periodicInstance{reg: reg, stop: stop}
}

// Three instances share the lease: the group runs about once per interval
// (not three times), and never two runs at once.
func TestPeriodicLeaseOneRunPerIntervalAcrossInstances(t *testing.T) {
	n := testenv.StartNATS(t)
	const interval = 400 * time.Millisecond
	lister := &overlapLister{hold: 50 * time.Millisecond}
	var insts []periodicInstance
	for i := range 3 {
		insts = append(insts, startPeriodic(t, n, fmt.Sprintf("p%d", i+1), interval, lister))
	}
	start := time.Now()
	time.Sleep(4 * time.Second)
	for _, in := range insts {
		in.stop()
	}
	elapsed := time.Since(start)
	runs := 0.0
	for _, in := range insts {
		runs += counter(t, in.reg, "paystream_reconcile_runs_total", "ok")
	}
	// Each instance alone would run elapsed/interval times; the group as a
	// whole may run at most once per interval (plus the one in progress).
	most := float64(elapsed/interval) + 1
	if runs > most || runs < 3 {
		t.Errorf("%v runs in %s across 3 instances, want between 3 and %v (one per %s)", runs, elapsed.Round(time.Millisecond), most, interval)
	}
	if o := lister.overlaps.Load(); o != 0 {
		t.Errorf("%d runs overlapped another", o)
	}
}

// The holder renews its lease for as long as its run lasts, so no one else
// runs meanwhile; when it crashes the lease expires and another instance
// takes over.
func TestPeriodicLeaseOfACrashedHolderExpires(t *testing.T) {
	n := testenv.StartNATS(t)
	const interval = 300 * time.Millisecond
	long := &overlapLister{hold: time.Hour} // the holder's run hangs until it dies
	holder := startPeriodic(t, n, "holder", interval, long)
	testenv.Eventually(t, 10*time.Second, "the holder to start its run", func() bool { return long.runs.Load() == 1 })

	others := &overlapLister{hold: 10 * time.Millisecond}
	startPeriodic(t, n, "p2", interval, others)
	startPeriodic(t, n, "p3", interval, others)
	time.Sleep(6 * interval) // many lease TTLs: only renewals keep it
	if r := others.runs.Load(); r != 0 {
		t.Fatalf("%d runs by other instances while the holder's run lasted", r)
	}

	holder.stop() // crash: the lease is neither renewed nor released
	crashed := time.Now()
	testenv.Eventually(t, 10*time.Second, "another instance to take the expired lease", func() bool { return others.runs.Load() >= 1 })
	t.Logf("taken over %s after the crash (lease TTL %s)", time.Since(crashed).Round(time.Millisecond), interval)
	if o := others.overlaps.Load(); o != 0 {
		t.Errorf("%d runs overlapped", o)
	}
}
