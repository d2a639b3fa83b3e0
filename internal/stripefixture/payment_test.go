package stripefixture_test

import (
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripefixture"
)

// PaymentEvent builds every type the processor handles, each verifiable by
// stripe-go and naming the ids it reports.
func TestPaymentEventBuildsEveryHandledType(t *testing.T) {
	p := stripefixture.Payment{CustomerID: "user_1", ContentID: "c0ffee00-0000-4000-8000-000000000001",
		OrganizationID: "0rg00000-0000-4000-8000-000000000001", Amount: 2999, Currency: "usd"}
	for _, typ := range purchase.HandledTypes() {
		t.Run(typ, func(t *testing.T) {
			body, ids, err := stripefixture.PaymentEvent(typ, stripefixture.Meta{APIVersion: "2023-10-16"}, p)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := webhook.ConstructEventWithOptions(body, stripefixture.Sign(body, "whsec_x", time.Now()), "whsec_x",
				webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
			if err != nil || string(ev.Type) != typ {
				t.Fatalf("built %q: type %q, err %v", typ, ev.Type, err)
			}
			if ev.ID != ids.Event || ids.Event == "" {
				t.Errorf("event id %q, reported %q", ev.ID, ids.Event)
			}
			if ids.PaymentIntent == "" && typ != "checkout.session.expired" {
				t.Errorf("no payment intent reported: %+v", ids)
			}
		})
	}
}

func TestPaymentEventIDsAndDefaults(t *testing.T) {
	p := stripefixture.Payment{SessionID: "cs_test_given", PaymentIntentID: "pi_given", ChargeID: "ch_given",
		CustomerID: "user_1", ContentID: "content", OrganizationID: "org", Amount: 5000, Currency: "eur"}
	build := func(t *testing.T, typ string, m stripefixture.Meta, p stripefixture.Payment) (stripe.Event, stripefixture.IDs) {
		t.Helper()
		body, ids, err := stripefixture.PaymentEvent(typ, m, p)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := webhook.ConstructEventWithOptions(body, stripefixture.Sign(body, "whsec_x", time.Now()), "whsec_x",
			webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
		if err != nil {
			t.Fatal(err)
		}
		return ev, ids
	}
	t.Run("checkout names the session, not the charge", func(t *testing.T) {
		ev, ids := build(t, "checkout.session.completed", stripefixture.Meta{EventID: "evt_given"}, p)
		want := stripefixture.IDs{Event: "evt_given", Session: "cs_test_given", PaymentIntent: "pi_given"}
		if ids != want || ev.ID != "evt_given" || ev.GetObjectValue("id") != "cs_test_given" ||
			ev.GetObjectValue("metadata", "amountPaidCents") != "5000" || ev.GetObjectValue("metadata", "currency") != "eur" {
			t.Errorf("ids %+v, event %s %v", ids, ev.ID, ev.Data.Object)
		}
	})
	t.Run("expired session without a given payment intent has none", func(t *testing.T) {
		q := p
		q.PaymentIntentID = ""
		ev, ids := build(t, "checkout.session.expired", stripefixture.Meta{}, q)
		if ids.PaymentIntent != "" || ev.GetObjectValue("payment_intent") != "" {
			t.Errorf("ids %+v, payment_intent %q", ids, ev.GetObjectValue("payment_intent"))
		}
	})
	t.Run("refund defaults to the whole amount and names the charge", func(t *testing.T) {
		ev, ids := build(t, "charge.refunded", stripefixture.Meta{}, p)
		if ids.Session != "" || ids.Charge != "ch_given" || ids.PaymentIntent != "pi_given" ||
			ev.GetObjectValue("amount_refunded") != "5000" || ev.GetObjectValue("refunded") != "true" {
			t.Errorf("ids %+v, charge %v", ids, ev.Data.Object)
		}
		q := p
		q.RefundAmount = 1200
		if ev, _ := build(t, "charge.refunded", stripefixture.Meta{}, q); ev.GetObjectValue("amount_refunded") != "1200" ||
			ev.GetObjectValue("refunded") != "false" {
			t.Errorf("partial refund = %v", ev.Data.Object)
		}
	})
	t.Run("dispute status defaults", func(t *testing.T) {
		if ev, _ := build(t, "charge.dispute.closed", stripefixture.Meta{}, p); ev.GetObjectValue("status") != "lost" {
			t.Errorf("closed status = %q", ev.GetObjectValue("status"))
		}
		if ev, _ := build(t, "charge.dispute.created", stripefixture.Meta{}, p); ev.GetObjectValue("status") != "needs_response" {
			t.Errorf("created status = %q", ev.GetObjectValue("status"))
		}
		q := p
		q.DisputeStatus = "won"
		if ev, _ := build(t, "charge.dispute.closed", stripefixture.Meta{}, q); ev.GetObjectValue("status") != "won" {
			t.Errorf("given status = %q", ev.GetObjectValue("status"))
		}
	})
	t.Run("missing ids are generated", func(t *testing.T) {
		_, ids := build(t, "payment_intent.succeeded", stripefixture.Meta{}, stripefixture.Payment{Amount: 100, Currency: "usd"})
		if len(ids.Event) != len("evt_")+24 || len(ids.PaymentIntent) != len("pi_")+24 || len(ids.Charge) != len("ch_")+24 || ids.Session != "" {
			t.Errorf("generated ids = %+v", ids)
		}
	})
}
