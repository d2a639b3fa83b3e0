package pipeline_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

// publishCheckouts stores one good checkout per session on STRIPE_EVENTS
// through the edge's publish path (event id = Nats-Msg-Id).
func (s *stack) publishCheckouts(prefix string, n int) []string {
	s.t.Helper()
	sessions := make([]string, n)
	at := time.Now().Add(-time.Minute)
	for i := range n {
		sessions[i] = fmt.Sprintf("cs_%s_%03d", prefix, i)
		id := fmt.Sprintf("evt_%s_%03d", prefix, i)
		s.publish(typeCompleted, id, id, s.checkout(typeCompleted, id, sessions[i], at, nil))
	}
	return sessions
}

// assertAppliedOnce checks that every session has one completed purchase
// and one access row, that stripe_events holds exactly wantEvents rows, that
// PURCHASES holds one purchases.completed per session, and that nothing was
// dead-lettered.
func (s *stack) assertAppliedOnce(sessions []string, wantEvents int) {
	s.t.Helper()
	if n := s.count("purchases", "status = ?", model.PurchaseCompleted); n != len(sessions) {
		s.t.Errorf("%d completed purchases, want %d", n, len(sessions))
	}
	if n := s.count("purchases", "TRUE"); n != len(sessions) {
		s.t.Errorf("%d purchases, want %d (one per session)", n, len(sessions))
	}
	if n := s.count("content_access", "revoked_at IS NULL"); n != len(sessions) {
		s.t.Errorf("%d access rows, want %d", n, len(sessions))
	}
	if n := s.count("stripe_events", "TRUE"); n != wantEvents {
		s.t.Errorf("%d stripe_events rows, want %d", n, wantEvents)
	}
	if c := s.subjectCounts(streams.PurchasesStream, "purchases.>"); c["purchases.completed"] != uint64(len(sessions)) || len(c) != 1 {
		s.t.Errorf("PURCHASES subjects = %v, want %d purchases.completed", c, len(sessions))
	}
	for _, sess := range sessions {
		if got := s.got.of(streams.PurchaseCompleted, sess); len(got) != 1 {
			s.t.Errorf("%d purchases.completed for %s, want 1", len(got), sess)
		}
	}
	if dl := s.dlq(); len(dl) != 0 {
		s.t.Errorf("%d dead letters, want none: %s", len(dl), describeLetters(dl))
	}
}

// Postgres connections of the processors are killed over and over with
// pg_terminate_backend while a batch is processed: every event is retried (or
// held by the database breaker) until it commits, and applied exactly once;
// nothing is dead-lettered.
func TestPostgresConnectionsKilledMidBatch(t *testing.T) {
	s := newStack(t)
	s.startProcessor(procOpts{})
	s.startProcessor(procOpts{})

	admin, err := pgx.Connect(context.Background(), testenv.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	kill := func() int {
		var n int
		err := admin.QueryRow(context.Background(),
			`SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			  WHERE datname = $1 AND pid <> pg_backend_pid()) k`, s.dbName).Scan(&n)
		if err != nil {
			t.Errorf("pg_terminate_backend: %v", err)
		}
		return n
	}

	const batch = 50
	const killEvery = 150 * time.Millisecond
	killed, rounds := 0, 0
	stop := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	halt := func() { once.Do(func() { close(stop) }); wg.Wait() }
	t.Cleanup(halt) // before the admin connection closes (cleanups run last-in first-out)
	// The first round kills the idle connections the pools opened at start,
	// so the first transactions are sure to meet a dead connection.
	killed, rounds = kill(), 1
	wg.Go(func() {
		// Kill until the batch is through, then a little longer, so the
		// relay and the retries are hit as well.
		for {
			select {
			case <-stop:
				return
			case <-time.After(killEvery):
				killed += kill()
				rounds++
			}
		}
	})
	sessions := s.publishCheckouts("kill", batch)
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := s.db.NewSelect().Table("stripe_events").Count(context.Background())
		if err == nil && n == batch {
			break
		}
		if time.Now().After(deadline) {
			halt()
			t.Fatalf("%d of %d events committed after 30s of kills every %s (%d backends killed); applied %v, retried %v, dead-lettered %v",
				n, batch, killEvery, killed, s.metric(eventsTotal, events(typeCompleted, "applied")),
				s.metric(eventsTotal, events(typeCompleted, "retried")), s.metric(eventsTotal, events(typeCompleted, "dead_lettered")))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(3 * killEvery)
	halt()

	s.waitSettled(30 * time.Second)
	s.assertAppliedOnce(sessions, batch)
	retried := s.metric(eventsTotal, events(typeCompleted, "retried"))
	applied := s.metric(eventsTotal, events(typeCompleted, "applied"))
	t.Logf("%d kill rounds terminated %d backends; applied %v, retried %v, duplicate %v, breaker openings %v", rounds, killed,
		applied, retried, s.metric(eventsTotal, events(typeCompleted, "duplicate")),
		s.metric("paystream_processor_db_breaker_transitions_total", map[string]string{"to": "open"}))
	// A killed connection is retried, or (57P01 is a store outage) opens
	// the instance's database breaker, which holds the event until a probe
	// answers: either is the fault met.
	opened := s.metric("paystream_processor_db_breaker_transitions_total", map[string]string{"to": "open"})
	if killed == 0 || retried+opened == 0 {
		t.Errorf("the fault was not exercised: %d backends killed, %v retries, %v breaker openings", killed, retried, opened)
	}
	if applied != batch {
		t.Errorf("events_total{applied} = %v, want %d", applied, batch)
	}
}

// An instance that dies after its transaction committed but before it
// acked: the broker redelivers the event after AckWait to another instance,
// which finds it applied (duplicate); one purchase, one purchases.completed.
func TestProcessorKilledBeforeAck(t *testing.T) {
	s := newStack(t)
	var died atomic.Bool
	committed := make(chan struct{})
	victim := s.startProcessor(procOpts{workers: 1, wrap: func(inst *instance, h handling.Handler) handling.Handler {
		return handlerFunc(func(ctx context.Context, ev stripeevent.Event) (handling.Outcome, error) {
			out, err := h.Handle(ctx, ev)
			if err == nil && died.CompareAndSwap(false, true) {
				// The process dies between commit and ack: its
				// connection goes, and with it the ack and the relay.
				inst.nc.Close()
				close(committed)
			}
			return out, err
		})
	}})

	const eventID, session = "evt_killed", "cs_killed"
	s.mustPost(s.checkout(typeCompleted, eventID, session, time.Now().Add(-time.Minute), nil))
	select {
	case <-committed:
	case <-time.After(20 * time.Second):
		t.Fatal("the victim never handled the event")
	}
	// The runtime counts the outcome, then its ack fails on the dead
	// connection.
	eventually(t, 10*time.Second, "the victim's failed ack", func() bool {
		return metricOf(t, victim.reg, "paystream_processor_ack_errors_total", map[string]string{"op": "ack"}) == 1
	})
	if v := metricOf(t, victim.reg, eventsTotal, events(typeCompleted, "applied")); v != 1 {
		t.Fatalf("victim applied %v events, want 1", v)
	}
	if n := s.count("purchases", "stripe_checkout_session_id = ?", session); n != 1 {
		t.Fatalf("%d purchases after the victim's commit, want 1", n)
	}

	// The survivor joins the group; the unacked event comes back to it.
	survivor := s.startProcessor(procOpts{})
	s.waitSettled(20 * time.Second)
	if v := metricOf(t, survivor.reg, eventsTotal, events(typeCompleted, "duplicate")); v != 1 {
		t.Errorf("survivor counted %v duplicates, want 1 (the redelivery)", v)
	}
	if v := metricOf(t, survivor.reg, eventsTotal, events(typeCompleted, "applied")); v != 0 {
		t.Errorf("survivor applied %v events, want 0", v)
	}
	if d := s.deliveries(); d < 2 {
		t.Errorf("the consumer made %d deliveries, want the original and a redelivery", d)
	}
	s.assertOnePurchase(session, 1)
	var ev model.StripeEvent
	if err := s.db.NewSelect().Model(&ev).Where("event_id = ?", eventID).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ev.Outcome != model.EventApplied {
		t.Errorf("stripe_events outcome = %q, want applied (the redelivery changes nothing)", ev.Outcome)
	}
	if dl := s.dlq(); len(dl) != 0 {
		t.Errorf("dead letters: %s", describeLetters(dl))
	}
}

// handlerFunc adapts a function to handling.Handler.
type handlerFunc func(ctx context.Context, ev stripeevent.Event) (handling.Outcome, error)

func (f handlerFunc) Handle(ctx context.Context, ev stripeevent.Event) (handling.Outcome, error) {
	return f(ctx, ev)
}

// The broker is stopped mid-stream and started again on the same store: the
// processors reconnect and resume by themselves, and everything published
// before and after the restart is applied once.
func TestBrokerRestartMidStream(t *testing.T) {
	s := newStack(t)
	s.startProcessor(procOpts{})
	s.startProcessor(procOpts{})

	before := s.publishCheckouts("before", 20)
	// Stop while the batch is being worked on.
	eventually(t, 20*time.Second, "processing to start", func() bool {
		return s.metric(eventsTotal, events(typeCompleted, "applied")) > 0
	})
	s.nats.Shutdown()
	time.Sleep(300 * time.Millisecond)
	s.nats.Start()

	// The test's own client reconnects too; publish as soon as it can.
	eventually(t, 20*time.Second, "the test client to reconnect", func() bool { return s.js.Conn().IsConnected() })
	after := s.publishCheckouts("after", 20)
	start := time.Now()
	eventually(t, 45*time.Second, "the processors to apply everything", s.settled)
	t.Logf("processors settled %s after the restart", time.Since(start).Round(time.Millisecond))
	s.waitSettled(45 * time.Second)
	t.Logf("PURCHASES consumer caught up %s after the restart", time.Since(start).Round(time.Millisecond))
	s.assertAppliedOnce(append(before, after...), len(before)+len(after))
}

// deliveries is how many deliveries (first ones and redeliveries) the
// processor consumer made.
func (s *stack) deliveries() uint64 {
	s.t.Helper()
	c, err := s.js.Consumer(context.Background(), streams.EventsStream, streams.ProcessorConsumer)
	if err != nil {
		s.t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	return info.Delivered.Consumer
}

// Poison events of every kind, interleaved with good ones, go through the
// edge and the real handler: each bad one lands in STRIPE_DLQ with its
// reason and is counted, and the good ones behind them are applied.
func TestPoisonThroughTheRealHandler(t *testing.T) {
	s := newStack(t)
	// One worker: the good events queue right behind the poison.
	s.startProcessor(procOpts{workers: 1})
	at := time.Now().Add(-time.Minute)
	meta := func(k, v string) func(*stripefixture.Checkout) {
		return func(c *stripefixture.Checkout) {
			if v == "" {
				delete(c.Metadata, k)
				return
			}
			c.Metadata[k] = v
		}
	}
	poison := []struct {
		name   string
		edit   func(*stripefixture.Checkout)
		reason string
	}{
		{"no customerId", meta("customerId", ""), "metadata_missing"},
		{"no contentId", meta("contentId", ""), "metadata_missing"},
		{"no organizationId", meta("organizationId", ""), "metadata_missing"},
		{"no amountPaidCents", meta("amountPaidCents", ""), "metadata_missing"},
		{"no currency", meta("currency", ""), "metadata_missing"},
		{"blank customerId", meta("customerId", "   "), "metadata_missing"},
		{"contentId not a uuid", meta("contentId", "not-a-uuid"), "metadata_invalid"},
		{"organizationId not a uuid", meta("organizationId", "org_1"), "metadata_invalid"},
		{"amount not an integer", meta("amountPaidCents", "29.99"), "metadata_invalid"},
		{"negative amount", meta("amountPaidCents", "-2999"), "metadata_invalid"},
		{"currency upper case", meta("currency", "USD"), "metadata_invalid"},
		{"amount mismatch", meta("amountPaidCents", "1999"), "amount_mismatch"},
		{"currency mismatch", meta("currency", "eur"), "currency_mismatch"},
		{"unknown content", meta("contentId", "7d3c5c1e-0000-4000-8000-000000000001"), "unknown_content"},
		{"content of another organization", meta("contentId", s.cat.otherContent.String()), "content_org_mismatch"},
	}
	wantReason := map[string]string{}
	var good []string
	for i, p := range poison {
		bad := fmt.Sprintf("evt_poison_%02d", i)
		wantReason[bad] = p.reason
		s.mustPost(s.checkout(typeCompleted, bad, fmt.Sprintf("cs_poison_%02d", i), at, p.edit))
		sess := fmt.Sprintf("cs_good_%02d", i)
		good = append(good, sess)
		s.mustPost(s.checkout(typeCompleted, fmt.Sprintf("evt_good_%02d", i), sess, at, nil))
	}
	s.waitSettled(30 * time.Second)

	letters := s.dlq()
	if len(letters) != len(poison) {
		t.Errorf("%d dead letters, want %d", len(letters), len(poison))
	}
	perReason := map[string]int{}
	for _, l := range letters {
		want, ok := wantReason[l.EventID]
		switch {
		case !ok:
			t.Errorf("unexpected dead letter %s (%s: %s)", l.EventID, l.Reason, l.Error)
		case l.Reason != want || l.Header.Get(streams.HeaderDLQReason) != want:
			t.Errorf("dead letter %s: reason %q, want %q (error %s)", l.EventID, l.Reason, want, l.Error)
		case l.Error == "" || l.Deliveries != 1 || l.OriginalSubject != "stripe.events.default."+typeCompleted:
			t.Errorf("dead letter %s = %+v", l.EventID, l)
		}
		delete(wantReason, l.EventID)
		perReason[l.Reason]++
	}
	for id, r := range wantReason {
		t.Errorf("%s (%s) was not dead-lettered", id, r)
	}
	for reason, n := range perReason {
		if v := s.metric(deadLetters, map[string]string{"reason": reason}); v != float64(n) {
			t.Errorf("dead_letters_total{reason=%q} = %v, want %d", reason, v, n)
		}
	}
	if v := s.metric(eventsTotal, events(typeCompleted, "dead_lettered")); v != float64(len(poison)) {
		t.Errorf("events_total{dead_lettered} = %v, want %d", v, len(poison))
	}
	// Nothing of the poison reached the database; every good one did.
	if n := s.count("stripe_events", "event_id LIKE 'evt_poison_%'"); n != 0 {
		t.Errorf("%d stripe_events rows of poison events, want 0", n)
	}
	s.assertAppliedOnceIgnoringDLQ(good)
}

// assertAppliedOnceIgnoringDLQ is assertAppliedOnce for tests that expect
// dead letters.
func (s *stack) assertAppliedOnceIgnoringDLQ(sessions []string) {
	s.t.Helper()
	if n := s.count("purchases", "TRUE"); n != len(sessions) {
		s.t.Errorf("%d purchases, want %d", n, len(sessions))
	}
	for _, sess := range sessions {
		s.assertOnePurchase(sess, 1)
	}
}
