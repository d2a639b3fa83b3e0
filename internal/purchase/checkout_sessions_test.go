package purchase_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/model"
)

// The processor moves the checkout_sessions rows the API created: completed
// (paid or async pending) and async success → complete, expired → expired;
// never backwards; sessions the API did not create are left alone.
func TestCheckoutSessionsMarkedFromWebhooks(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) { testCheckoutSessionsMarked(t, path) })
}

func testCheckoutSessionsMarked(t *testing.T, path purchase.BatchPath) {
	e := newEnvOn(t, path, purchase.AccessPolicy{})
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

// A batch of paid checkouts of API-created sessions completes every session
// row, on both paths (the set-based one marks them in one statement): an
// open one, an expired one (the money taken wins) and one completed before
// (its completed_at stays); sessions created elsewhere are not inserted.
func TestCheckoutSessionsMarkedInBatch(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		earlier := t0.Add(-time.Hour)
		rows := []model.CheckoutSession{
			{ID: "cs_b_open", Status: model.CheckoutOpen},
			{ID: "cs_b_expired", Status: model.CheckoutExpired, ExpiredAt: &earlier},
			{ID: "cs_b_done", Status: model.CheckoutComplete, CompletedAt: &earlier},
		}
		for i := range rows {
			r := &rows[i]
			r.CustomerID, r.ContentID, r.OrganizationID = "user_1", cat.content, cat.org
			r.AmountCents, r.Currency, r.ExpiresAt = 2999, "usd", t0.Add(time.Hour)
			e.insert(r)
		}
		at := t0.Add(-time.Minute)
		var evs []stripeevent.Event
		for i, id := range []string{"cs_b_open", "cs_b_expired", "cs_b_done", "cs_b_elsewhere"} {
			evs = append(evs, checkout(t, "checkout.session.completed", fmt.Sprintf("evt_b%d", i), at, cat, id, 2999, nil))
		}
		for i, r := range e.h.HandleBatch(context.Background(), evs) {
			if r.Err != nil || r.Outcome != handling.Applied {
				t.Fatalf("event %d: %s, %v", i, r.Outcome, r.Err)
			}
		}
		wantAt := map[string]time.Time{"cs_b_open": at, "cs_b_expired": at, "cs_b_done": earlier}
		for id, when := range wantAt {
			var s model.CheckoutSession
			if err := e.db.NewSelect().Model(&s).Where("id = ?", id).Scan(context.Background()); err != nil {
				t.Fatal(err)
			}
			if s.Status != model.CheckoutComplete || s.CompletedAt == nil || !s.CompletedAt.Equal(when) {
				t.Errorf("%s: status %s completed_at %v, want complete at %s", id, s.Status, s.CompletedAt, when)
			}
		}
		if n := e.count("checkout_sessions", ""); n != 3 {
			t.Errorf("checkout_sessions rows = %d, want the 3 the API created", n)
		}
	})
}
