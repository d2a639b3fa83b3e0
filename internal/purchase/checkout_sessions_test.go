package purchase_test

import (
	"context"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/model"
)

// The processor moves the checkout_sessions rows the API created: completed
// (paid or async pending) and async success → complete, expired → expired;
// never backwards; sessions the API did not create are left alone.
func TestCheckoutSessionsMarkedFromWebhooks(t *testing.T) {
	e := newEnv(t, purchase.AccessPolicy{})
	cat := e.seedContent()
	at := t0.Add(-time.Minute)
	for _, id := range []string{"cs_api_paid", "cs_api_unpaid", "cs_api_expired", "cs_api_late"} {
		e.insert(&model.CheckoutSession{ID: id, CustomerID: "user_1", ContentID: cat.content, OrganizationID: cat.org,
			AmountCents: 2999, Currency: "usd", Status: model.CheckoutOpen, ExpiresAt: t0.Add(time.Hour)})
	}
	e.mustHandle(checkout(t, "checkout.session.completed", "evt_s1", at, cat, "cs_api_paid", 2999, nil), handling.Applied)
	e.mustHandle(checkout(t, "checkout.session.completed", "evt_s2", at, cat, "cs_api_unpaid", 2999, unpaid), handling.Applied)
	e.mustHandle(checkout(t, "checkout.session.expired", "evt_s3", at, cat, "cs_api_expired", 2999, nil), handling.Applied)
	// Completed, then a (disordered) expiry of the same session: it stays complete.
	e.mustHandle(checkout(t, "checkout.session.completed", "evt_s4", at, cat, "cs_api_late", 2999, nil), handling.Applied)
	e.mustHandle(checkout(t, "checkout.session.expired", "evt_s5", at.Add(time.Second), cat, "cs_api_late", 2999, nil), handling.Duplicate)
	// A session created elsewhere has no row: nothing to mark, nothing fails.
	e.mustHandle(checkout(t, "checkout.session.completed", "evt_s6", at, cat, "cs_elsewhere", 2999, nil), handling.Applied)

	want := map[string]string{
		"cs_api_paid": model.CheckoutComplete, "cs_api_unpaid": model.CheckoutComplete,
		"cs_api_expired": model.CheckoutExpired, "cs_api_late": model.CheckoutComplete,
	}
	for id, status := range want {
		var s model.CheckoutSession
		if err := e.db.NewSelect().Model(&s).Where("id = ?", id).Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s.Status != status {
			t.Errorf("%s status = %s, want %s", id, s.Status, status)
		}
		if (status == model.CheckoutComplete) != (s.CompletedAt != nil) || (status == model.CheckoutExpired) != (s.ExpiredAt != nil) {
			t.Errorf("%s completed_at %v expired_at %v", id, s.CompletedAt, s.ExpiredAt)
		}
	}
	if n := e.count("checkout_sessions", ""); n != 4 {
		t.Errorf("checkout_sessions rows = %d, want the 4 the API created", n)
	}
}
