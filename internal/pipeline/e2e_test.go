package pipeline_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/config/processorconfig"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

// One signed checkout.session.completed through the edge becomes exactly one
// purchase with the seeded split, one access row, one audited stripe_events
// row carrying the edge's receipt time, one purchases.completed message, and
// the processor's metrics say so.
func TestCheckoutThroughTheEdgeBecomesOnePurchase(t *testing.T) {
	s := newStack(t)
	s.startProcessor(procOpts{})
	const eventID, session = "evt_e2e_one", "cs_e2e_one"
	at := time.Now().Add(-time.Minute).Truncate(time.Second)

	before := time.Now()
	s.mustPost(s.checkout(typeCompleted, eventID, session, at, nil))
	after := time.Now()
	s.waitSettled(20 * time.Second)

	want := expectedSplit(t)
	if n := s.count("purchases", "TRUE"); n != 1 {
		t.Fatalf("%d purchases, want 1", n)
	}
	p := s.purchase(session)
	if p.Status != model.PurchaseCompleted || p.AmountPaidCents != price || p.Currency != currency ||
		p.CustomerID != customerPrefix+session || p.ContentID != s.cat.content || p.OrganizationID != s.cat.org {
		t.Errorf("purchase = %+v", p)
	}
	if p.PlatformFeeCents != want.Platform || p.OrganizationFeeCents != want.Organization || p.CreatorPayoutCents != want.Creator ||
		p.PlatformFeeBps != platformBps || p.OrganizationFeeBps != organizationBp {
		t.Errorf("split = %d/%d/%d @ %d/%d bps, want %d/%d/%d @ %d/%d", p.PlatformFeeCents, p.OrganizationFeeCents,
			p.CreatorPayoutCents, p.PlatformFeeBps, p.OrganizationFeeBps, want.Platform, want.Organization, want.Creator,
			platformBps, organizationBp)
	}
	if p.PlatformAgreementID == nil || *p.PlatformAgreementID != s.cat.platformAgreement ||
		p.CreatorOrgAgreementID == nil || *p.CreatorOrgAgreementID != s.cat.creatorAgreement {
		t.Errorf("agreement ids = %v / %v, want %s / %s", p.PlatformAgreementID, p.CreatorOrgAgreementID,
			s.cat.platformAgreement, s.cat.creatorAgreement)
	}
	if p.StripePaymentIntentID == nil || *p.StripePaymentIntentID != piOf(session) || p.PurchasedAt == nil || !p.PurchasedAt.Equal(at) {
		t.Errorf("payment intent %v, purchased_at %v; want %s, %s", p.StripePaymentIntentID, p.PurchasedAt, piOf(session), at)
	}

	if n := s.count("content_access", "TRUE"); n != 1 {
		t.Fatalf("%d access rows, want 1", n)
	}
	a := s.access(session)
	if a.AccessType != model.AccessPurchased || a.RevokedAt != nil || a.PurchaseID == nil || *a.PurchaseID != p.ID {
		t.Errorf("access = %+v", a)
	}

	// The audit row: applied, linked, with the receipt time the edge put in
	// Paystream-Received-At (Postgres keeps microseconds).
	var ev model.StripeEvent
	if err := s.db.NewSelect().Model(&ev).Where("event_id = ?", eventID).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := s.count("stripe_events", "TRUE"); n != 1 {
		t.Errorf("%d stripe_events rows, want 1", n)
	}
	if ev.Outcome != model.EventApplied || ev.Type != typeCompleted || ev.Endpoint != streams.DefaultEndpoint ||
		ev.PurchaseID == nil || *ev.PurchaseID != p.ID {
		t.Errorf("stripe_events row = %+v", ev)
	}
	stored := s.storedEvent(eventID)
	hdr, err := time.Parse(time.RFC3339Nano, stored.Header.Get(streams.HeaderReceivedAt))
	if err != nil {
		t.Fatalf("Paystream-Received-At on the stream: %v", err)
	}
	if hdr.Before(before) || hdr.After(after) {
		t.Errorf("edge receipt time %s outside the request [%s, %s]", hdr, before, after)
	}
	if ev.ReceivedAt == nil || ev.ReceivedAt.Sub(hdr).Abs() > time.Microsecond {
		t.Errorf("received_at = %v, want the edge header %s", ev.ReceivedAt, hdr)
	}

	// Downstream sees exactly one purchases.completed with the same data.
	if c := s.subjectCounts(streams.PurchasesStream, "purchases.>"); c["purchases.completed"] != 1 || len(c) != 1 {
		t.Errorf("PURCHASES subjects = %v, want one purchases.completed", c)
	}
	got := s.got.of(streams.PurchaseCompleted, session)
	if len(got) != 1 {
		t.Fatalf("collector got %d purchases.completed, want 1 (all: %+v)", len(got), s.got.all())
	}
	d := got[0].Data
	if got[0].Subject != p.ID.String() || d.PurchaseID != p.ID || d.Status != model.PurchaseCompleted || !d.Access ||
		d.AmountPaidCents != price || d.Currency != currency || d.CustomerID != p.CustomerID || d.ContentID != s.cat.content ||
		d.OrganizationID != s.cat.org || d.CreatorID != creatorID || d.Stripe.EventID != eventID ||
		d.Split.PlatformFeeCents != want.Platform || d.Split.OrganizationFeeCents != want.Organization ||
		d.Split.CreatorPayoutCents != want.Creator {
		t.Errorf("purchases.completed = %+v", got[0])
	}

	if v := s.metric(eventsTotal, events(typeCompleted, "applied")); v != 1 {
		t.Errorf("events_total{applied} = %v, want 1", v)
	}
	if v := s.metric(eventsTotal, events(typeCompleted, "duplicate")); v != 0 {
		t.Errorf("events_total{duplicate} = %v, want 0", v)
	}
	if n := s.histogramCount(endToEnd); n != 1 {
		t.Errorf("end-to-end histogram count = %d, want 1", n)
	}
}

// The idempotency cases on the real stack: Stripe retrying one event
// (the edge dedups it), Stripe sending a second event id for the session,
// and a burst of duplicates that got past the broker's dedup, raced by three
// processor instances on the same durable consumer.
func TestDuplicatesMakeOnePurchase(t *testing.T) {
	s := newStack(t)
	at := time.Now().Add(-time.Minute)

	for range 3 {
		s.startProcessor(procOpts{})
	}

	s.run(t, "same event posted five times", func(t *testing.T) {
		body := s.checkout(typeCompleted, "evt_dup_five", "cs_dup_five", at, nil)
		for i := range 5 {
			if code := s.post(body); code != http.StatusOK {
				t.Fatalf("post #%d: %d, want 200", i+1, code)
			}
		}
		s.waitSettled(20 * time.Second)
		if c := s.subjectCounts(streams.EventsStream, "stripe.events.>"); c["stripe.events.default."+typeCompleted] != 1 {
			t.Errorf("STRIPE_EVENTS = %v, want one message (broker dedup)", c)
		}
		s.assertOnePurchase("cs_dup_five", 1)
	})

	s.run(t, "second event id for the session", func(t *testing.T) {
		s.mustPost(s.checkout(typeCompleted, "evt_dup_second", "cs_dup_five", at.Add(time.Second), nil))
		s.waitSettled(20 * time.Second)
		s.assertOnePurchase("cs_dup_five", 2)
		var ev model.StripeEvent
		if err := s.db.NewSelect().Model(&ev).Where("event_id = ?", "evt_dup_second").Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		if ev.Outcome != model.EventDuplicate {
			t.Errorf("second event id outcome = %q, want duplicate", ev.Outcome)
		}
	})

	s.run(t, "concurrent duplicates on three instances", func(t *testing.T) {
		const session = "cs_dup_race"
		const copies, otherIDs = 8, 6
		type msg struct{ id, msgID string }
		var msgs []msg
		for i := range copies {
			msgs = append(msgs, msg{"evt_race_main", fmt.Sprintf("evt_race_main-copy-%d", i)})
		}
		for i := range otherIDs {
			id := fmt.Sprintf("evt_race_alt_%d", i)
			msgs = append(msgs, msg{id, id}, msg{id, id + "-copy"})
		}
		bodies := map[string][]byte{}
		for _, m := range msgs {
			if bodies[m.id] == nil {
				bodies[m.id] = s.checkout(typeCompleted, m.id, session, at, nil)
			}
		}
		appliedBefore := s.metric(eventsTotal, events(typeCompleted, "applied"))
		dupBefore := s.metric(eventsTotal, events(typeCompleted, "duplicate"))
		var wg sync.WaitGroup
		for _, m := range msgs {
			wg.Go(func() { s.publish(typeCompleted, m.id, m.msgID, bodies[m.id]) })
		}
		wg.Wait()
		s.waitSettled(30 * time.Second)
		s.assertOnePurchase(session, 1+otherIDs)
		applied := s.metric(eventsTotal, events(typeCompleted, "applied")) - appliedBefore
		dup := s.metric(eventsTotal, events(typeCompleted, "duplicate")) - dupBefore
		if applied != 1 || applied+dup != float64(len(msgs)) {
			t.Errorf("applied %v + duplicate %v, want 1 + %d", applied, dup, len(msgs)-1)
		}
		if dl := s.dlq(); len(dl) != 0 {
			t.Errorf("dead letters: %s", describeLetters(dl))
		}
		for _, p := range s.procs {
			t.Logf("%s: applied %v, duplicate %v, retried %v", p.name,
				metricOf(t, p.reg, eventsTotal, events(typeCompleted, "applied")),
				metricOf(t, p.reg, eventsTotal, events(typeCompleted, "duplicate")),
				metricOf(t, p.reg, eventsTotal, events(typeCompleted, "retried")))
		}
	})
}

// assertOnePurchase checks that session has exactly one completed purchase,
// one access row and one purchases.completed message, and that wantEvents
// stripe_events rows point at it.
func (s *stack) assertOnePurchase(session string, wantEvents int) {
	s.t.Helper()
	if n := s.count("purchases", "stripe_checkout_session_id = ?", session); n != 1 {
		s.t.Fatalf("%d purchases for %s, want 1", n, session)
	}
	p := s.purchase(session)
	if p.Status != model.PurchaseCompleted {
		s.t.Errorf("purchase %s is %s, want completed", session, p.Status)
	}
	if n := s.count("content_access", "user_id = ?", customerPrefix+session); n != 1 {
		s.t.Errorf("%d access rows for %s, want 1", n, session)
	}
	if n := s.count("stripe_events", "purchase_id = ?", p.ID); n != wantEvents {
		s.t.Errorf("%d stripe_events rows for %s, want %d", n, session, wantEvents)
	}
	if n := s.count("outbox", "aggregate_id = ?", p.ID); n != 1 {
		s.t.Errorf("%d outbox rows for %s, want 1", n, session)
	}
	if got := s.got.of(streams.PurchaseCompleted, session); len(got) != 1 {
		s.t.Errorf("%d purchases.completed for %s, want 1", len(got), session)
	}
}

// storedEvent returns the STRIPE_EVENTS message of eventID.
func (s *stack) storedEvent(eventID string) *storedMsg {
	s.t.Helper()
	ctx := context.Background()
	st, err := s.js.Stream(ctx, streams.EventsStream)
	if err != nil {
		s.t.Fatal(err)
	}
	for seq := uint64(1); seq <= st.CachedInfo().State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if m.Header.Get(streams.HeaderEventID) == eventID {
			return &storedMsg{Header: m.Header, Data: m.Data}
		}
	}
	s.t.Fatalf("event %s is not on %s", eventID, streams.EventsStream)
	return nil
}

// The refund lifecycle on the real stack, in both delivery orders: a full
// charge.refunded through the edge refunds the purchase, revokes access and
// emits purchases.refunded; a refund that overtakes its checkout is retried
// (Pending, never dead-lettered) until the checkout arrives, and ends in the
// same state.
func TestRefundLifecycleInBothOrders(t *testing.T) {
	s := newStack(t)
	s.startProcessor(procOpts{})
	s.startProcessor(procOpts{})
	paidAt := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	refundAt := paidAt.Add(5 * time.Minute)

	type final struct {
		status              string
		refunded            int64
		refundedAfterPaid   time.Duration
		refundID            string
		accessRevoked       bool
		completed, refundEv int
		refundFull          bool
		refundAmount        int64
		refundAccess        bool
	}
	state := func(session string) final {
		t.Helper()
		p := s.purchase(session)
		a := s.access(session)
		f := final{status: p.Status, refunded: p.RefundAmountCents, accessRevoked: a.RevokedAt != nil,
			completed: len(s.got.of(streams.PurchaseCompleted, session))}
		if p.RefundedAt != nil && p.PurchasedAt != nil {
			f.refundedAfterPaid = p.RefundedAt.Sub(*p.PurchasedAt)
		}
		if p.StripeRefundID != nil {
			f.refundID = *p.StripeRefundID
		}
		refunds := s.got.of(streams.PurchaseRefunded, session)
		f.refundEv = len(refunds)
		if len(refunds) == 1 && refunds[0].Data.Refund != nil {
			r := refunds[0].Data.Refund
			f.refundFull, f.refundAmount, f.refundAccess = r.Full, r.AmountCents, refunds[0].Data.Access
		}
		return f
	}
	want := func(session string) final {
		return final{status: model.PurchaseRefunded, refunded: price, refundedAfterPaid: 5 * time.Minute,
			refundID: "re_" + session, accessRevoked: true, completed: 1, refundEv: 1, refundFull: true, refundAmount: price}
	}

	var inOrder, reversed final
	s.run(t, "checkout then refund", func(t *testing.T) {
		const session = "cs_life_in_order"
		s.mustPost(s.checkout(typeCompleted, "evt_life_a_paid", session, paidAt, nil))
		s.waitSettled(20 * time.Second)
		if a := s.access(session); a.RevokedAt != nil {
			t.Fatalf("access revoked before the refund: %+v", a)
		}
		s.mustPost(s.fullRefund("evt_life_a_refund", session, refundAt))
		s.waitSettled(20 * time.Second)
		inOrder = state(session)
		if inOrder != want(session) {
			t.Errorf("final state = %+v\nwant          %+v", inOrder, want(session))
		}
	})

	s.run(t, "refund before checkout", func(t *testing.T) {
		const session = "cs_life_reversed"
		retriedBefore := s.metric(eventsTotal, events(typeRefunded, "retried"))
		s.mustPost(s.fullRefund("evt_life_b_refund", session, refundAt))
		eventually(t, 10*time.Second, "the early refund to be retried", func() bool {
			return s.metric(eventsTotal, events(typeRefunded, "retried"))-retriedBefore >= 2
		})
		if n := s.count("stripe_events", "event_id = ?", "evt_life_b_refund"); n != 0 {
			t.Fatalf("the early refund left %d stripe_events rows; a retried event must roll back", n)
		}
		s.mustPost(s.checkout(typeCompleted, "evt_life_b_paid", session, paidAt, nil))
		s.waitSettled(20 * time.Second)
		reversed = state(session)
		if reversed != want(session) {
			t.Errorf("final state = %+v\nwant          %+v", reversed, want(session))
		}
		if dl := s.dlq(); len(dl) != 0 {
			t.Errorf("dead letters: %s", describeLetters(dl))
		}
	})

	// Both orders agree, up to the session-specific refund id.
	reversed.refundID = inOrder.refundID
	if inOrder != reversed {
		t.Errorf("delivery order changed the outcome:\nin order %+v\nreversed %+v", inOrder, reversed)
	}
	if v := s.metric(eventsTotal, events(typeRefunded, "applied")); v != 2 {
		t.Errorf("events_total{charge.refunded,applied} = %v, want 2", v)
	}
}

// A processor shut down gracefully (SIGTERM) while events are in flight
// finishes them, and its relay publishes what those last transactions wrote
// before the process exits (RunWithCompanions stops the companions only
// after the processor drained, for exactly this), so a single-instance
// deployment does not hold purchase events back until its next start.
func TestGracefulShutdownRelaysTheLastPurchases(t *testing.T) {
	s := newStack(t)
	// A relay that polls rarely is asleep when the shutdown comes, as the
	// production relay (200ms) usually is.
	pc := processorconfig.Domain{Relay: outbox.RelayConfig{PollInterval: 2 * time.Second, MaxBackoff: 2 * time.Second}}
	started := make(chan struct{}, 100)
	inst := s.startProcessor(procOpts{workers: 2, domain: &pc, wrap: func(_ *instance, h handling.Handler) handling.Handler {
		return handlerFunc(func(ctx context.Context, ev stripeevent.Event) (handling.Outcome, error) {
			started <- struct{}{}
			time.Sleep(150 * time.Millisecond) // long enough to be in flight at the shutdown
			return h.Handle(ctx, ev)
		})
	}})
	s.publishCheckouts("shutdown", 6)
	<-started
	if err := inst.stop(20 * time.Second); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	committed := s.count("purchases", "TRUE")
	if committed == 0 {
		t.Fatal("nothing was committed before the shutdown; the test proves nothing")
	}
	if n := s.count("outbox", "published_at IS NULL"); n != 0 {
		t.Errorf("%d of %d outbox rows left unpublished by the stopped processor", n, s.count("outbox", "TRUE"))
	}
	if c := s.subjectCounts(streams.PurchasesStream, "purchases.>"); c["purchases.completed"] != uint64(committed) {
		t.Errorf("PURCHASES holds %d purchases.completed, want one per committed purchase (%d)", c["purchases.completed"], committed)
	}
}
