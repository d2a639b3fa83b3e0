package stripefixture_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/subscription"
)

// verify checks body the way a Stripe webhook receiver does.
func verify(t *testing.T, body []byte) stripe.Event {
	t.Helper()
	ev, err := webhook.ConstructEventWithOptions(body, stripefixture.Sign(body, "whsec_x", time.Now()), "whsec_x",
		webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// MemberEvent builds every type the subscription family routes, each
// verifiable by stripe-go and decoded by the processor's decoder as the
// subscription, invoice or payment it reports.
func TestMemberEventBuildsEverySubscriptionType(t *testing.T) {
	mb := stripefixture.Member{SubscriptionID: "sub_given", InvoiceID: "in_given", PaymentIntentID: "pi_given", ChargeID: "ch_given",
		CustomerID: "user_1", PlanID: "00000000-0000-4000-8000-0000000005a1", OrganizationID: "00000000-0000-4000-8000-000000000026",
		Amount: 999, Currency: "usd"}
	for _, typ := range subscription.HandledTypes() {
		t.Run(typ, func(t *testing.T) {
			body, ids, err := stripefixture.MemberEvent(typ, stripefixture.Meta{}, mb)
			if err != nil {
				t.Fatal(err)
			}
			ev := verify(t, body)
			if string(ev.Type) != typ || ev.ID != ids.Event {
				t.Fatalf("built %s %s, reported %+v", ev.Type, ev.ID, ids)
			}
			dec, err := subscription.DecodeEvent(body)
			if err != nil {
				t.Fatalf("the processor cannot decode it: %v", err)
			}
			switch {
			case dec.Subscription != nil:
				s := dec.Subscription
				if s.ID != "sub_given" || s.Status != stripefixture.MemberStatus(typ) || !s.PeriodEnd.After(s.PeriodStart) ||
					s.Metadata["planId"] != mb.PlanID || ids.Invoice != "" {
					t.Errorf("subscription %+v, ids %+v", s, ids)
				}
			case dec.Invoice != nil:
				i := dec.Invoice
				if i.ID != "in_given" || i.SubscriptionID != "sub_given" || i.ChargeID != "ch_given" || i.Currency != "usd" ||
					i.BillingReason != "subscription_cycle" || i.SubscriptionMetadata["customerId"] != "user_1" {
					t.Errorf("invoice %+v", i)
				}
				if paid := typ == "invoice.paid"; paid != (i.AmountPaid == 999) || paid == i.PaidAt.IsZero() {
					t.Errorf("%s: amount paid %d, paid at %s", typ, i.AmountPaid, i.PaidAt)
				}
			case dec.InvoicePayment != nil:
				if p := dec.InvoicePayment; p.InvoiceID != "in_given" || p.PaymentIntentID != "pi_given" ||
					!strings.HasPrefix(ev.APIVersion, "2025-03-31") {
					t.Errorf("invoice payment %+v, api version %s", p, ev.APIVersion)
				}
			default:
				t.Fatalf("decoded %+v", dec)
			}
		})
	}
}

// The lifecycle's events follow each other a second or more apart (no
// ties), in the order Stripe sends them, all about one subscription.
func TestMembershipLifecycle(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	sub, steps, err := stripefixture.MembershipLifecycle(stripefixture.Membership{CustomerID: "user_1",
		PlanID: "00000000-0000-4000-8000-0000000005a1", OrganizationID: "00000000-0000-4000-8000-000000000026", Amount: 999, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	var last time.Time
	for _, st := range steps {
		ev := verify(t, st.Body)
		at := time.Unix(ev.Created, 0)
		if !at.After(last) || !at.Before(now) || ev.ID != st.EventID || string(ev.Type) != st.Type || st.What == "" {
			t.Fatalf("step %s %s at %s after %s (now %s)", st.Type, ev.ID, at, last, now)
		}
		last = at
		types = append(types, st.Type)
		if !strings.Contains(string(st.Body), sub) {
			t.Errorf("%s does not name %s", st.Type, sub)
		}
	}
	want := "customer.subscription.created invoice.paid checkout.session.completed customer.subscription.updated " +
		"customer.subscription.updated invoice.paid customer.subscription.updated invoice.payment_failed " +
		"customer.subscription.updated invoice.paid customer.subscription.updated customer.subscription.updated " +
		"customer.subscription.deleted"
	if got := strings.Join(types, " "); got != want {
		t.Errorf("types\n%s\nwant\n%s", got, want)
	}
	if _, _, err := stripefixture.MembershipLifecycle(stripefixture.Membership{Interval: "week"}); err == nil {
		t.Error("a weekly membership was built")
	}
}
