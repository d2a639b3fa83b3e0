package processor

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/testenv"
)

// The store is down for many times the retry budget: events are held, not
// nak'ed (nothing dead-lettered, no event near its last delivery), the
// instance is not ready while the breaker is open, and everything is applied
// once the probe answers.
func TestBreakerHoldsEventsThroughAStoreOutage(t *testing.T) {
	js := testenv.StartNATS(t).JetStream(t)
	var down atomic.Bool
	down.Store(true)
	storeErr := fault.Wrap(fmt.Errorf("begin: %w", &pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}),
		fault.Unavailable, "database_unavailable", "database unavailable")
	h := newRecorder(func(stripeevent.Event, int) (handling.Outcome, error) {
		if down.Load() {
			return "", storeErr
		}
		return handling.Applied, nil
	})
	var probes atomic.Int64
	cfg := testConfig()
	// The outage lasts several AckWaits: only InProgress keeps the events.
	// (Shorter AckWaits make a redelivery out of a scheduling stall of a
	// loaded machine, which is not what this test is about.)
	cfg.Consumer.AckWait = time.Second
	cfg.Consumer.MaxDeliver = 3
	cfg.Consumer.Backoff = []time.Duration{20 * time.Millisecond, 20 * time.Millisecond}
	cfg.Breaker = BreakerConfig{MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Probe: func(context.Context) error {
			probes.Add(1)
			if down.Load() {
				return errors.New("connection refused")
			}
			return nil
		}}
	s := start(t, js, h, cfg)
	for i := range 20 {
		publish(t, js, fmt.Sprintf("evt_out_%02d", i), "charge.refunded")
	}
	testenv.Eventually(t, 5*time.Second, "the breaker to open", func() bool { return s.p.Check(context.Background()) != nil })
	time.Sleep(3 * time.Second) // 3 AckWaits, > 100 times the retry budget
	for i := range 20 {
		publish(t, js, fmt.Sprintf("evt_late_%02d", i), "charge.refunded")
	}
	time.Sleep(500 * time.Millisecond)
	if st, _ := s.p.breaker.watch(); st == BreakerClosed {
		t.Fatal("breaker closed while the store is down")
	}
	if probes.Load() < 3 {
		t.Errorf("%d probes during the outage, want several", probes.Load())
	}
	if n := len(dlqMessages(t, js)); n != 0 {
		t.Fatalf("%d dead letters during the outage", n)
	}
	down.Store(false)
	testenv.Eventually(t, 10*time.Second, "all 40 events applied", func() bool { e, _ := h.appliedCount(); return e == 40 })
	testenv.Eventually(t, 5*time.Second, "the consumer to settle", func() bool { return settled(t, js) })
	if err := s.p.Check(context.Background()); err != nil {
		t.Errorf("not ready after the outage: %v", err)
	}
	// Held and parked events keep their delivery. Only one the broker sent
	// while the subscription was being drained can miss it and come back
	// once after the outage; without InProgress every AckWait of the outage
	// would cost one (three here, reaching MaxDeliver).
	extra := 0
	for id, calls := range h.calls {
		for _, c := range calls {
			if c.deliveries > 2 {
				t.Errorf("%s was handled on delivery %d; the outage may cost at most one delivery (calls %+v)", id, c.deliveries, calls)
			}
			if c.deliveries == 2 {
				extra++
			}
		}
	}
	t.Logf("%d of 40 events were redelivered once (in flight when consumption paused)", extra)
	if n := len(dlqMessages(t, js)); n != 0 {
		t.Errorf("%d dead letters", n)
	}
	if v := value(t, s.m.breaker.transitions.WithLabelValues("closed")); v < 1 {
		t.Errorf("%v transitions to closed", v)
	}
	if v := value(t, s.m.breaker.held); v != 0 {
		t.Errorf("held gauge %v after the outage", v)
	}
}

// Without a probe there is no breaker: store errors spend the retry budget
// as any transient error does (the behaviour the breaker exists to change).
func TestNoBreakerWithoutProbe(t *testing.T) {
	js := testenv.StartNATS(t).JetStream(t)
	h := newRecorder(func(stripeevent.Event, int) (handling.Outcome, error) {
		return "", fault.Wrap(&pgconn.PgError{Code: "57P01"}, fault.Unavailable, "database_unavailable", "db")
	})
	cfg := testConfig()
	cfg.Consumer.MaxDeliver = 2
	cfg.Consumer.Backoff = []time.Duration{20 * time.Millisecond}
	s := start(t, js, h, cfg)
	if s.p.breaker != nil {
		t.Fatal("breaker on without a probe")
	}
	publish(t, js, "evt_nobreaker", "charge.refunded")
	testenv.Eventually(t, 10*time.Second, "the event to be dead-lettered", func() bool { return len(dlqMessages(t, js)) == 1 })
}
