package purchase_test

import (
	"context"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/model"
)

func TestPaymentIntentEventsAreRecordedAndLinked(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		w := newWorld(e.seedContent(), "pi")

		// Before any purchase: recorded, nothing created.
		e.mustHandle(w.paymentIntent(t, "payment_intent.succeeded", "evt_pi1", t0), handling.Applied)
		if n := e.count("purchases", ""); n != 0 {
			t.Fatalf("payment intent created %d purchases", n)
		}
		if n := e.count("stripe_events", "event_id = 'evt_pi1' AND outcome = 'recorded' AND purchase_id IS NULL"); n != 1 {
			t.Error("unlinked payment intent not recorded")
		}

		// With a purchase: linked, charge id learnt, no state change, no event.
		e.mustHandle(w.checkout(t, "checkout.session.completed", "evt_c", t0, ""), handling.Applied)
		e.mustHandle(w.paymentIntent(t, "payment_intent.succeeded", "evt_pi2", t0.Add(time.Second)), handling.Applied)
		p := e.purchaseBySession(w.session)
		if p.StripeChargeID == nil || *p.StripeChargeID != w.charge || p.Status != model.PurchaseCompleted {
			t.Errorf("purchase after link = %+v", p)
		}
		var se model.StripeEvent
		if err := e.db.NewSelect().Model(&se).Where("event_id = 'evt_pi2'").Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		if se.PurchaseID == nil || *se.PurchaseID != p.ID || se.Outcome != model.EventApplied {
			t.Errorf("stripe event = %+v", se)
		}
		// A failed attempt on the same intent does not fail the purchase.
		e.mustHandle(w.paymentIntent(t, "payment_intent.payment_failed", "evt_pi3", t0.Add(2*time.Second)), handling.Applied)
		if p := e.purchaseBySession(w.session); p.Status != model.PurchaseCompleted {
			t.Errorf("status after payment_failed = %s", p.Status)
		}
		if n := len(e.outboxRows(p.ID)); n != 1 {
			t.Errorf("payment intent events wrote outbox rows: %d", n)
		}
	})
}
