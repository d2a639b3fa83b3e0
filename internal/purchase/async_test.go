package purchase_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/model"
)

func unpaid(c *stripefixture.Checkout) { c.PaymentStatus = "unpaid" }

func subjects(rows []model.Outbox) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Subject
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAsyncPaymentSucceededCompletesPendingPurchase(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		// An organization agreement starts between checkout and payment: the
		// split is fixed when the payment completes, at that event's time.
		paidAt := t0.Add(48 * time.Hour)
		e.insert(&model.OrganizationPlatformAgreement{ID: uuid.New(), OrganizationID: cat.org, PlatformFeePercentage: 500,
			EffectiveFrom: t0.Add(24 * time.Hour)})

		e.mustHandle(checkout(t, "checkout.session.completed", "evt_c", t0, cat, "cs_async", 2999, unpaid), handling.Applied)
		if p := e.purchaseBySession("cs_async"); p.Status != model.PurchasePending || p.PlatformFeeCents != 300 {
			t.Fatalf("after checkout: %+v", p)
		} else {
			e.wantLedger(p, nil, map[string]int64{}) // nothing is owed before the payment
		}
		e.mustHandle(checkout(t, "checkout.session.async_payment_succeeded", "evt_s", paidAt, cat, "cs_async", 2999, nil), handling.Applied)
		p := e.purchaseBySession("cs_async")
		if p.Status != model.PurchaseCompleted || p.PlatformFeeCents != 150 || p.PlatformAgreementID == nil ||
			p.PurchasedAt == nil || !p.PurchasedAt.Equal(paidAt) {
			t.Errorf("after async success: status %s fee %d agreement %v purchased_at %v", p.Status, p.PlatformFeeCents, p.PlatformAgreementID, p.PurchasedAt)
		}
		if a := e.access("user_1", cat.content); a == nil || a.RevokedAt != nil {
			t.Errorf("access = %+v", a)
		}
		// The sale is posted when the payment succeeds, with the split of
		// that moment.
		e.wantLedger(p, []string{"purchase:P"},
			map[string]int64{"platform/stripe_clearing": -2999, "platform/pending": 150, "creator/pending": 2849})
		if got := subjects(e.outboxRows(p.ID)); !equalStrings(got, []string{"purchases.pending", "purchases.completed"}) {
			t.Errorf("outbox = %v", got)
		}
		for status, want := range map[string]float64{"pending": 1, "completed": 1} {
			if got := metric(t, e.reg, "paystream_purchases_total", map[string]string{"currency": "usd", "status": status}); got != want {
				t.Errorf("purchases_total{%s} = %v, want %v", status, got, want)
			}
		}
		if got := metric(t, e.reg, "paystream_revenue_minor_units_total", map[string]string{"currency": "usd", "party": "platform"}); got != 150 {
			t.Errorf("platform revenue = %v", got)
		}
		// The late duplicate of the succeeded event, and a repeated checkout, change nothing.
		e.mustHandle(checkout(t, "checkout.session.async_payment_succeeded", "evt_s2", paidAt, cat, "cs_async", 2999, nil), handling.Duplicate)
		e.mustHandle(checkout(t, "checkout.session.completed", "evt_c2", t0, cat, "cs_async", 2999, unpaid), handling.Duplicate)
		if n := len(e.outboxRows(p.ID)); n != 2 {
			t.Errorf("outbox rows = %d after duplicates", n)
		}
	})
}

func TestAsyncPaymentSucceededCreatesMissingPurchase(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		e.mustHandle(checkout(t, "checkout.session.async_payment_succeeded", "evt_s", t0, cat, "cs_only", 2999, nil), handling.Applied)
		p := e.purchaseBySession("cs_only")
		if p.Status != model.PurchaseCompleted || p.CreatorPayoutCents != 2699 {
			t.Errorf("purchase = %+v", p)
		}
		if a := e.access("user_1", cat.content); a == nil {
			t.Error("no access")
		}
	})
}

func TestAsyncPaymentFailed(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		tests := []struct {
			name    string
			pending bool
		}{{"pending purchase fails", true}, {"missing purchase is created failed", false}}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := newEnvOn(t, path, purchase.AccessPolicy{})
				cat := e.seedContent()
				want := []string{"purchases.failed"}
				if tt.pending {
					e.mustHandle(checkout(t, "checkout.session.completed", "evt_c", t0, cat, "cs_f", 2999, unpaid), handling.Applied)
					want = []string{"purchases.pending", "purchases.failed"}
				}
				e.mustHandle(checkout(t, "checkout.session.async_payment_failed", "evt_f", t0.Add(time.Hour), cat, "cs_f", 2999, nil), handling.Applied)
				p := e.purchaseBySession("cs_f")
				if p.Status != model.PurchaseFailed || p.FailedAt == nil || p.FailureReason == nil || *p.FailureReason != "payment_failed" {
					t.Errorf("purchase = %+v", p)
				}
				if a := e.access("user_1", cat.content); a != nil {
					t.Errorf("failed purchase has access row %+v", a)
				}
				if got := subjects(e.outboxRows(p.ID)); !equalStrings(got, want) {
					t.Errorf("outbox = %v, want %v", got, want)
				}
				if got := metric(t, e.reg, "paystream_purchases_total", map[string]string{"currency": "usd", "status": "failed"}); got != 1 {
					t.Errorf("purchases_total{failed} = %v", got)
				}
				// A late unpaid checkout.session.completed cannot bring it back to pending.
				e.mustHandle(checkout(t, "checkout.session.completed", "evt_late", t0, cat, "cs_f", 2999, unpaid), handling.Duplicate)
				if p := e.purchaseBySession("cs_f"); p.Status != model.PurchaseFailed {
					t.Errorf("status after late checkout = %s", p.Status)
				}
			})
		}
	})
}

func TestCheckoutExpired(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		expired := func(id, session string) stripeevent.Event {
			// Expired sessions carry no payment intent and need no metadata.
			return checkout(t, "checkout.session.expired", id, t0.Add(24*time.Hour), cat, session, 2999, func(c *stripefixture.Checkout) {
				c.PaymentIntentID, c.Metadata = "", nil
			})
		}

		// No purchase: recorded only.
		e.mustHandle(expired("evt_x1", "cs_never"), handling.Applied)
		if n := e.count("purchases", ""); n != 0 {
			t.Errorf("expired session created %d purchases", n)
		}
		if n := e.count("stripe_events", "event_id = 'evt_x1' AND outcome = 'recorded'"); n != 1 {
			t.Error("expired event not recorded")
		}

		// Pending purchase: failed.
		e.mustHandle(checkout(t, "checkout.session.completed", "evt_c", t0, cat, "cs_pend", 2999, unpaid), handling.Applied)
		e.mustHandle(expired("evt_x2", "cs_pend"), handling.Applied)
		p := e.purchaseBySession("cs_pend")
		if p.Status != model.PurchaseFailed || p.FailureReason == nil || *p.FailureReason != "expired" {
			t.Errorf("pending after expiry = %+v", p)
		}
		if got := subjects(e.outboxRows(p.ID)); !equalStrings(got, []string{"purchases.pending", "purchases.failed"}) {
			t.Errorf("outbox = %v", got)
		}

		// Paid purchase: expiry after payment does nothing.
		e.mustHandle(checkout(t, "checkout.session.completed", "evt_paid", t0, cat, "cs_paid", 2999, func(c *stripefixture.Checkout) {
			c.Metadata["customerId"] = "user_2"
		}), handling.Applied)
		e.mustHandle(expired("evt_x3", "cs_paid"), handling.Duplicate)
		p = e.purchaseBySession("cs_paid")
		if p.Status != model.PurchaseCompleted || len(e.outboxRows(p.ID)) != 1 {
			t.Errorf("paid after expiry = %s with %d events", p.Status, len(e.outboxRows(p.ID)))
		}
		if a := e.access("user_2", cat.content); a == nil || a.RevokedAt != nil {
			t.Errorf("access after expiry = %+v", a)
		}
	})
}
