package purchase_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

func TestCheckoutCompletedPaidCreatesOnePurchase(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		at := t0.Add(-time.Minute)
		ev := checkout(t, "checkout.session.completed", "evt_paid_1", at, cat, "cs_paid_1", 2999, nil)
		e.mustHandle(ev, handling.Applied)

		p := e.purchaseBySession("cs_paid_1")
		if p.Status != model.PurchaseCompleted || p.AmountPaidCents != 2999 || p.Currency != "usd" || p.CustomerID != "user_1" ||
			p.ContentID != cat.content || p.OrganizationID != cat.org {
			t.Errorf("purchase = %+v", p)
		}
		if p.PlatformFeeCents != 300 || p.OrganizationFeeCents != 0 || p.CreatorPayoutCents != 2699 ||
			p.PlatformFeeBps != 1000 || p.OrganizationFeeBps != 0 || p.PlatformAgreementID != nil || p.CreatorOrgAgreementID != nil {
			t.Errorf("split = %d/%d/%d at %d/%d bps", p.PlatformFeeCents, p.OrganizationFeeCents, p.CreatorPayoutCents, p.PlatformFeeBps, p.OrganizationFeeBps)
		}
		if p.PurchasedAt == nil || !p.PurchasedAt.Equal(at.Truncate(time.Second)) {
			t.Errorf("purchased_at = %v, want the event time %v", p.PurchasedAt, at)
		}
		if p.StripePaymentIntentID == nil || *p.StripePaymentIntentID != "pi_cs_paid_1" || p.StripeCustomerID == nil || *p.StripeCustomerID != "cus_1" {
			t.Errorf("stripe ids = %v %v", p.StripePaymentIntentID, p.StripeCustomerID)
		}
		if p.CreatorID != cat.creator {
			t.Errorf("creator_id = %q, want the content's %q", p.CreatorID, cat.creator)
		}
		// The sale, in the same transaction: the amount arrived at Stripe,
		// each party's share pending.
		e.wantLedger(p, []string{"purchase:P"},
			map[string]int64{"platform/stripe_clearing": -2999, "platform/pending": 300, "creator/pending": 2699})
		for table, want := range map[string]int{"purchases": 1, "content_access": 1, "stripe_events": 1, "outbox": 1,
			"ledger_transactions": 1, "ledger_entries": 3} {
			if n := e.count(table, ""); n != want {
				t.Errorf("%s rows = %d, want %d", table, n, want)
			}
		}
		a := e.access("user_1", cat.content)
		if a == nil || a.AccessType != model.AccessPurchased || a.PurchaseID == nil || *a.PurchaseID != p.ID || a.RevokedAt != nil {
			t.Errorf("access = %+v", a)
		}
		var se model.StripeEvent
		if err := e.db.NewSelect().Model(&se).Where("event_id = ?", "evt_paid_1").Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		if se.Outcome != model.EventApplied || se.PurchaseID == nil || *se.PurchaseID != p.ID || se.Type != ev.Type ||
			se.Endpoint != "default" || se.ReceivedAt == nil || !se.ProcessedAt.Equal(t0) {
			t.Errorf("stripe event row = %+v", se)
		}

		rows := e.outboxRows(p.ID)
		if len(rows) != 1 || rows[0].Subject != "purchases.completed" || rows[0].EventType != "com.paystream.purchase.completed.v1" {
			t.Fatalf("outbox = %+v", rows)
		}
		var pe streams.PurchaseEvent
		if err := json.Unmarshal(rows[0].Payload, &pe); err != nil {
			t.Fatal(err)
		}
		if pe.SpecVersion != "1.0" || pe.ID != rows[0].ID.String() || pe.Source != "paystream/processor" ||
			pe.Subject != p.ID.String() || pe.DataContentType != "application/json" || !pe.Time.Equal(t0) {
			t.Errorf("envelope = %+v", pe)
		}
		d := pe.Data
		if d.PurchaseID != p.ID || d.CustomerID != "user_1" || d.ContentID != cat.content || d.OrganizationID != cat.org ||
			d.CreatorID != cat.creator || d.AmountPaidCents != 2999 || d.Currency != "usd" || d.Status != "completed" ||
			d.PreviousStatus != "" || !d.Access || d.Split.PlatformFeeCents != 300 || d.Split.CreatorPayoutCents != 2699 ||
			d.Split.PlatformFeeBps != 1000 || d.Stripe.CheckoutSessionID != "cs_paid_1" || d.Stripe.PaymentIntentID != "pi_cs_paid_1" ||
			d.Stripe.EventID != "evt_paid_1" || d.PurchasedAt == nil || d.Refund != nil || d.Dispute != nil {
			t.Errorf("data = %+v", d)
		}

		for _, m := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"paystream_purchases_total", map[string]string{"currency": "usd", "status": "completed"}, 1},
			{"paystream_revenue_minor_units_total", map[string]string{"currency": "usd", "party": "gross"}, 2999},
			{"paystream_revenue_minor_units_total", map[string]string{"currency": "usd", "party": "platform"}, 300},
			{"paystream_revenue_minor_units_total", map[string]string{"currency": "usd", "party": "organization"}, 0},
			{"paystream_revenue_minor_units_total", map[string]string{"currency": "usd", "party": "creator"}, 2699},
			{"paystream_content_access_changes_total", map[string]string{"change": "granted"}, 1},
			{"paystream_ledger_postings_total", map[string]string{"cause": "purchase"}, 1},
			{"paystream_ledger_posted_minor_units_total", map[string]string{"cause": "purchase", "currency": "usd"}, 2999},
		} {
			if got := metric(t, e.reg, m.name, m.labels); got != m.want {
				t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
			}
		}
	})
}

func TestCheckoutSplitUsesAgreementsInForceAtEventTime(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		from := t0.AddDate(0, -1, 0)
		until := t0.AddDate(0, 1, 0)
		orgAg := model.OrganizationPlatformAgreement{ID: uuid.New(), OrganizationID: cat.org, PlatformFeePercentage: 500, EffectiveFrom: from, EffectiveUntil: &until}
		coAg := model.CreatorOrganizationAgreement{ID: uuid.New(), CreatorID: cat.creator, OrganizationID: cat.org, OrganizationFeePercentage: 2000, EffectiveFrom: from}
		e.insert(&model.PlatformFeeConfig{ID: uuid.New(), PlatformFeePercentage: 800, EffectiveFrom: from.AddDate(-1, 0, 0)}, &orgAg, &coAg)

		// Inside the org agreement's window: 5 % then 20 % of the rest.
		e.mustHandle(checkout(t, "checkout.session.completed", "evt_in", t0, cat, "cs_in", 2999, nil), handling.Applied)
		p := e.purchaseBySession("cs_in")
		if p.PlatformFeeCents != 150 || p.OrganizationFeeCents != 570 || p.CreatorPayoutCents != 2279 ||
			p.PlatformAgreementID == nil || *p.PlatformAgreementID != orgAg.ID || p.CreatorOrgAgreementID == nil || *p.CreatorOrgAgreementID != coAg.ID {
			t.Errorf("split in window = %+v", p)
		}
		// After it (event time, not processing time, decides): the 8 % config.
		e.mustHandle(checkout(t, "checkout.session.completed", "evt_after", until.Add(time.Hour), cat, "cs_after", 2999, nil), handling.Applied)
		p = e.purchaseBySession("cs_after")
		if p.PlatformFeeCents != 240 || p.PlatformAgreementID != nil || p.PlatformFeeConfigID == nil || p.OrganizationFeeCents != 552 {
			t.Errorf("split after window = %+v", p)
		}
	})
}

func TestCheckoutSameEventFiveTimes(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		ev := checkout(t, "checkout.session.completed", "evt_5x", t0, cat, "cs_5x", 2999, nil)
		e.mustHandle(ev, handling.Applied)
		for i := 0; i < 4; i++ {
			ev.Deliveries++
			e.mustHandle(ev, handling.Duplicate)
		}
		for table, want := range map[string]int{"purchases": 1, "content_access": 1, "stripe_events": 1, "outbox": 1} {
			if n := e.count(table, ""); n != want {
				t.Errorf("%s rows = %d, want %d", table, n, want)
			}
		}
		if got := metric(t, e.reg, "paystream_purchases_total", map[string]string{"currency": "usd", "status": "completed"}); got != 1 {
			t.Errorf("purchases counted %v times", got)
		}
	})
}

func TestCheckoutTwoEventIDsForOneSession(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		e.mustHandle(checkout(t, "checkout.session.completed", "evt_a", t0, cat, "cs_two", 2999, nil), handling.Applied)
		e.mustHandle(checkout(t, "checkout.session.completed", "evt_b", t0.Add(time.Second), cat, "cs_two", 2999, nil), handling.Duplicate)
		if n := e.count("purchases", ""); n != 1 {
			t.Errorf("purchases = %d", n)
		}
		if n := e.count("outbox", ""); n != 1 {
			t.Errorf("outbox rows = %d", n)
		}
		if n := e.count("stripe_events", "event_id = 'evt_b' AND outcome = 'duplicate' AND purchase_id IS NOT NULL AND error <> ''"); n != 1 {
			t.Errorf("second event not recorded as duplicate")
		}
	})
}

// Three instances, each with its own connection pool, receive the same event
// and two more event ids of the same session at once.
func TestCheckoutConcurrentDuplicatesAcrossInstances(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		for round := 0; round < 5; round++ {
			session := fmt.Sprintf("cs_conc_%d", round)
			var handlers []*purchase.Handler
			for i := 0; i < 3; i++ {
				bdb, err := db.Open(context.Background(), e.dsn, db.Options{MaxOpenConns: 4})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = bdb.Close() })
				h, _ := e.newHandler(bdb)
				handlers = append(handlers, h)
			}
			same := checkout(t, "checkout.session.completed", "evt_conc_"+session, t0, cat, session, 2999, nil)
			events := []stripeevent.Event{same, same, same,
				checkout(t, "checkout.session.completed", "evt_conc_b_"+session, t0, cat, session, 2999, nil),
				checkout(t, "checkout.session.completed", "evt_conc_c_"+session, t0, cat, session, 2999, nil)}
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				outcomes = map[handling.Outcome]int{}
			)
			start := make(chan struct{})
			for i, ev := range events {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					out, err := handlers[i%3].Handle(context.Background(), ev)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						t.Errorf("Handle: %v", err)
						return
					}
					outcomes[out]++
				}()
			}
			close(start)
			wg.Wait()
			if outcomes[handling.Applied] != 1 || outcomes[handling.Duplicate] != 4 {
				t.Errorf("round %d outcomes = %v, want 1 applied, 4 duplicate", round, outcomes)
			}
			if n := e.count("purchases", "stripe_checkout_session_id = ?", session); n != 1 {
				t.Errorf("round %d purchases = %d", round, n)
			}
			if n := e.count("stripe_events", "event_id LIKE ?", "evt_conc_%"+session); n != 3 {
				t.Errorf("round %d stripe events = %d, want 3", round, n)
			}
		}
		if n := e.count("content_access", ""); n != 1 {
			t.Errorf("access rows = %d", n)
		}
		if n := e.count("outbox", ""); n != 5 {
			t.Errorf("outbox rows = %d, want one per session", n)
		}
	})
}

func TestCheckoutRejectsBadInputAndWritesNothing(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		other := e.seedContent()
		deleted := e.seedContent()
		if _, err := e.db.NewDelete().Model(&model.Content{ID: deleted.content}).WherePK().Exec(context.Background()); err != nil {
			t.Fatal(err)
		}
		md := func(f func(map[string]string)) func(*stripefixture.Checkout) {
			return func(c *stripefixture.Checkout) { f(c.Metadata) }
		}
		tests := []struct {
			name   string
			cat    catalog
			edit   func(*stripefixture.Checkout)
			raw    func(stripeevent.Event) stripeevent.Event
			reason string
		}{
			{"no metadata", cat, func(c *stripefixture.Checkout) { c.Metadata = nil }, nil, "metadata_missing"},
			{"missing customerId", cat, md(func(m map[string]string) { delete(m, "customerId") }), nil, "metadata_missing"},
			{"blank currency", cat, md(func(m map[string]string) { m["currency"] = " " }), nil, "metadata_missing"},
			{"contentId not a uuid", cat, md(func(m map[string]string) { m["contentId"] = "abc" }), nil, "metadata_invalid"},
			{"organizationId not a uuid", cat, md(func(m map[string]string) { m["organizationId"] = "org_1" }), nil, "metadata_invalid"},
			{"amount not an integer", cat, md(func(m map[string]string) { m["amountPaidCents"] = "29.99" }), nil, "metadata_invalid"},
			{"amount negative", cat, md(func(m map[string]string) { m["amountPaidCents"] = "-1" }), nil, "metadata_invalid"},
			{"amount huge", cat, md(func(m map[string]string) { m["amountPaidCents"] = "99999999999999999999" }), nil, "metadata_invalid"},
			{"currency upper case", cat, md(func(m map[string]string) { m["currency"] = "USD" }), nil, "metadata_invalid"},
			{"customerId padded", cat, md(func(m map[string]string) { m["customerId"] = " user_1" }), nil, "metadata_invalid"},
			{"amount mismatch", cat, md(func(m map[string]string) { m["amountPaidCents"] = "2998" }), nil, "amount_mismatch"},
			{"currency mismatch", cat, md(func(m map[string]string) { m["currency"] = "eur" }), nil, "currency_mismatch"},
			{"unknown content", cat, md(func(m map[string]string) { m["contentId"] = uuid.NewString() }), nil, "unknown_content"},
			{"deleted content", deleted, nil, nil, "unknown_content"},
			{"content of another organization", cat, md(func(m map[string]string) { m["organizationId"] = other.org.String() }), nil, "content_org_mismatch"},
			{"unknown payment status", cat, func(c *stripefixture.Checkout) { c.PaymentStatus = "weird" }, nil, "invalid_payload"},
			{"payload not json", cat, nil, func(ev stripeevent.Event) stripeevent.Event { ev.Payload = []byte("{nope"); return ev }, "invalid_payload"},
			{"payload id differs", cat, nil, func(ev stripeevent.Event) stripeevent.Event { ev.ID = "evt_other"; return ev }, "invalid_payload"},
			{"payload type differs", cat, nil, func(ev stripeevent.Event) stripeevent.Event { ev.Type = "checkout.session.expired"; return ev }, "invalid_payload"},
			{"object not a session", cat, nil, func(ev stripeevent.Event) stripeevent.Event {
				ev.Payload = []byte(fmt.Sprintf(`{"id":%q,"type":%q,"created":1,"data":{"object":{"id":"ch_1","object":"charge"}}}`, ev.ID, ev.Type))
				return ev
			}, "invalid_payload"},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ev := checkout(t, "checkout.session.completed", fmt.Sprintf("evt_bad_%d", i), t0, tt.cat, fmt.Sprintf("cs_bad_%d", i), 2999, tt.edit)
				if tt.raw != nil {
					ev = tt.raw(ev)
				}
				_, err := e.handle(ev)
				var fe *fault.Error
				if !errors.As(err, &fe) || fe.Code != fault.Invalid || fe.Reason != tt.reason {
					t.Fatalf("Handle = %v, want fault.Invalid %s", err, tt.reason)
				}
				if fault.ActionOf(err) != fault.DeadLetter || fe.Msg == "" {
					t.Errorf("error %v is not dead-lettered with a message", err)
				}
				for _, table := range []string{"purchases", "content_access", "stripe_events", "outbox"} {
					if n := e.count(table, ""); n != 0 {
						t.Errorf("%s has %d rows after a rejected event", table, n)
					}
				}
			})
		}
	})
}

func TestCheckoutUnpaidIsPendingWithoutAccess(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		ev := checkout(t, "checkout.session.completed", "evt_unpaid", t0, cat, "cs_unpaid", 2999,
			func(c *stripefixture.Checkout) { c.PaymentStatus = "unpaid" })
		e.mustHandle(ev, handling.Applied)
		p := e.purchaseBySession("cs_unpaid")
		if p.Status != model.PurchasePending || p.PurchasedAt != nil {
			t.Errorf("purchase = %+v", p)
		}
		if a := e.access("user_1", cat.content); a != nil {
			t.Errorf("pending purchase granted access: %+v", a)
		}
		rows := e.outboxRows(p.ID)
		if len(rows) != 1 || rows[0].Subject != "purchases.pending" {
			t.Errorf("outbox = %+v", rows)
		}
		if got := metric(t, e.reg, "paystream_revenue_minor_units_total", map[string]string{"currency": "usd", "party": "gross"}); got != 0 {
			t.Errorf("pending purchase counted as revenue: %v", got)
		}
		ok, err := purchase.CheckAccess(context.Background(), e.db, "user_1", cat.content, t0, purchase.AccessPolicy{})
		if err != nil || ok {
			t.Errorf("CheckAccess = %v, %v; want false", ok, err)
		}
	})
}

func TestNoPaymentRequiredIsFulfilled(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		ev := checkout(t, "checkout.session.completed", "evt_free", t0, cat, "cs_free", 0, func(c *stripefixture.Checkout) {
			c.PaymentStatus = "no_payment_required"
		})
		e.mustHandle(ev, handling.Applied)
		p := e.purchaseBySession("cs_free")
		if p.Status != model.PurchaseCompleted || p.AmountPaidCents != 0 || p.PlatformFeeCents != 0 {
			t.Errorf("purchase = %+v", p)
		}
		if a := e.access("user_1", cat.content); a == nil || a.RevokedAt != nil {
			t.Errorf("access = %+v", a)
		}
	})
}

func TestUnhandledTypeIsRecordedAsIgnored(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		ev := stripeevent.Event{ID: "evt_cust", Type: "customer.created", Endpoint: "default", Created: t0,
			Payload: []byte(`{"id":"evt_cust","object":"event","type":"customer.created","created":1700000000,"data":{"object":{"id":"cus_1","object":"customer"}}}`)}
		e.mustHandle(ev, handling.Ignored)
		if n := e.count("stripe_events", "event_id = 'evt_cust' AND outcome = 'ignored'"); n != 1 {
			t.Errorf("ignored rows = %d", n)
		}
		e.mustHandle(ev, handling.Duplicate)
	})
}

func TestTransientDatabaseErrorIsRetryable(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		ev := checkout(t, "checkout.session.completed", "evt_down", t0, cat, "cs_down", 2999, nil)
		bdb, err := db.Open(context.Background(), e.dsn, db.Options{})
		if err != nil {
			t.Fatal(err)
		}
		h, _ := e.newHandler(bdb)
		_ = bdb.Close() // the pool is gone: every query fails like a lost connection
		_, err = e.handleOn(h, ev)
		if fault.ActionOf(err) != fault.Retry {
			t.Fatalf("Handle on a closed pool = %v (code %s), want a retryable error", err, fault.CodeOf(err))
		}
		e.mustHandle(ev, handling.Applied) // and a healthy instance applies it afterwards
	})
}

func TestSecondSessionWithTheSamePaymentIntentIsRejected(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		samePI := func(c *stripefixture.Checkout) { c.PaymentIntentID = "pi_shared" }
		e.mustHandle(checkout(t, "checkout.session.completed", "evt_1", t0, cat, "cs_one", 2999, samePI), handling.Applied)
		_, err := e.handle(checkout(t, "checkout.session.completed", "evt_2", t0, cat, "cs_two", 2999, samePI))
		if fault.CodeOf(err) != fault.Invalid || fault.ReasonOf(err) != "payment_intent_conflict" {
			t.Fatalf("Handle = %v, want fault.Invalid payment_intent_conflict", err)
		}
		if n := e.count("stripe_events", ""); n != 1 {
			t.Errorf("stripe_events rows = %d, want 1", n)
		}
	})
}
