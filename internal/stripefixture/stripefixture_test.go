package stripefixture_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/paystream/paystream/internal/stripefixture"
)

// Every builder must produce JSON that stripe-go itself decodes into the
// right object, signed so that stripe-go verifies it.
func TestEventsDecodeWithStripeGo(t *testing.T) {
	meta := stripefixture.Meta{EventID: "evt_test_1", Created: time.Now()}
	md := stripefixture.PurchaseMetadata("user_1", "c0ffee00-0000-4000-8000-000000000001", "0rg00000-0000-4000-8000-000000000001", 2999, "usd")
	tests := []struct {
		name  string
		build func() ([]byte, error)
		check func(t *testing.T, ev stripe.Event)
	}{
		{"checkout completed", func() ([]byte, error) {
			return stripefixture.CheckoutEvent("checkout.session.completed", meta, stripefixture.Checkout{AmountTotal: 2999, Metadata: md})
		}, func(t *testing.T, ev stripe.Event) {
			var s stripe.CheckoutSession
			mustUnmarshal(t, ev.Data.Raw, &s)
			if s.AmountTotal != 2999 || s.PaymentStatus != "paid" || s.Metadata["contentId"] == "" || s.PaymentIntent == nil {
				t.Errorf("session = %+v", s)
			}
		}},
		{"checkout expired has no payment intent", func() ([]byte, error) {
			return stripefixture.CheckoutEvent("checkout.session.expired", meta, stripefixture.Checkout{AmountTotal: 100})
		}, func(t *testing.T, ev stripe.Event) {
			var s stripe.CheckoutSession
			mustUnmarshal(t, ev.Data.Raw, &s)
			if s.Status != "expired" || s.PaymentIntent != nil {
				t.Errorf("session = %+v", s)
			}
		}},
		{"partial refund", func() ([]byte, error) {
			return stripefixture.ChargeRefundedEvent(meta, stripefixture.Charge{PaymentIntentID: "pi_1", Amount: 2999,
				Refunds: []stripefixture.Refund{{Amount: 1000}}})
		}, func(t *testing.T, ev stripe.Event) {
			var c stripe.Charge
			mustUnmarshal(t, ev.Data.Raw, &c)
			if c.AmountRefunded != 1000 || c.Refunded || len(c.Refunds.Data) != 1 || c.PaymentIntent.ID != "pi_1" {
				t.Errorf("charge = %+v", c)
			}
		}},
		{"dispute lost", func() ([]byte, error) {
			return stripefixture.DisputeEvent("charge.dispute.closed", meta, stripefixture.Dispute{ChargeID: "ch_1", PaymentIntentID: "pi_1", Amount: 2999, Status: "lost"})
		}, func(t *testing.T, ev stripe.Event) {
			var d stripe.Dispute
			mustUnmarshal(t, ev.Data.Raw, &d)
			if d.Status != stripe.DisputeStatusLost || d.Charge.ID != "ch_1" {
				t.Errorf("dispute = %+v", d)
			}
		}},
		{"payment intent failed", func() ([]byte, error) {
			return stripefixture.PaymentIntentEvent("payment_intent.payment_failed", meta, stripefixture.PaymentIntent{Amount: 2999})
		}, func(t *testing.T, ev stripe.Event) {
			var p stripe.PaymentIntent
			mustUnmarshal(t, ev.Data.Raw, &p)
			if p.Status != "requires_payment_method" || p.LastPaymentError == nil {
				t.Errorf("payment intent = %+v", p)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := tt.build()
			if err != nil {
				t.Fatal(err)
			}
			secret := stripefixture.NewSecret()
			ev, err := webhook.ConstructEventWithOptions(body, stripefixture.Sign(body, secret, time.Now()), secret,
				webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
			if err != nil {
				t.Fatalf("stripe-go rejects the fixture: %v", err)
			}
			if ev.ID != "evt_test_1" || ev.APIVersion != stripefixture.APIVersion {
				t.Errorf("event id/version = %s/%s", ev.ID, ev.APIVersion)
			}
			tt.check(t, ev)
		})
	}
}

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
