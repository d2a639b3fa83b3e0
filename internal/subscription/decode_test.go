package subscription

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paystream/paystream/internal/fault"
)

// Every fixture decodes, in both shapes, to the same facts: the shape is the
// API version's business, never the processor's.
func TestDecodeFixturesBothShapes(t *testing.T) {
	meta := map[string]string{MetaCustomerID: fixCustomer, MetaPlanID: planA.String(), MetaOrganizationID: orgID.String()}
	tr := period{t0, t0.Add(14 * day)}
	rs := period{tr.end.Add(2 * day), tr.end.Add(33 * day)}
	sub := func(st string, p period, f func(s *Subscription)) *Subscription {
		s := &Subscription{ID: fixSub, Metadata: meta, Facts: Facts{StripeCustomerID: "cus_RFixMember0001", Status: st,
			PeriodStart: p.start, PeriodEnd: p.end, StartedAt: t0}}
		if f != nil {
			f(s)
		}
		return s
	}
	trial := func(s *Subscription) { s.TrialStart, s.TrialEnd = tr.start, tr.end }
	tests := []struct {
		typ  string
		kind Kind
		want Event
	}{
		{TypeSubscriptionCreated, KindSubscription, Event{Created: t0, Subscription: sub("incomplete", p1, nil)}},
		{TypeSubscriptionUpdated, KindSubscription, Event{Created: p2.start, Subscription: sub("active", p2, nil)}},
		{TypeSubscriptionDeleted, KindSubscription, Event{Created: p2.start.Add(5 * day), Subscription: sub("canceled", p2,
			func(s *Subscription) {
				s.CanceledAt, s.EndedAt, s.CancelReason = p2.start.Add(5*day), p2.start.Add(5*day), "cancellation_requested"
			})}},
		{TypeSubscriptionTrialWillEnd, KindSubscription, Event{Created: tr.end.Add(-3 * day), Subscription: sub("trialing", tr, trial)}},
		{TypeSubscriptionPaused, KindSubscription, Event{Created: tr.end, Subscription: sub("paused", tr, trial)}},
		{TypeSubscriptionResumed, KindSubscription, Event{Created: rs.start, Subscription: sub("active", rs, trial)}},
		{TypeInvoicePaid, KindInvoicePaid, Event{Created: t0.Add(2 * time.Second), Invoice: &Invoice{
			ID: "in_1QFixSignup00000000001", SubscriptionID: fixSub, SubscriptionMetadata: meta,
			StripeCustomerID: "cus_RFixMember0001", AmountPaid: 1000, Currency: "usd", Status: "paid",
			BillingReason: "subscription_create", ChargeID: "ch_3QFixSignup000000000001",
			PaymentIntentID: "pi_3QFixSignup000000000001", PaidAt: t0.Add(2 * time.Second),
			PeriodStart: p1.start, PeriodEnd: p1.end, AttemptCount: 1}}},
		{TypeInvoicePaymentFailed, KindInvoiceFailed, Event{Created: p2.start.Add(time.Hour), Invoice: &Invoice{
			ID: "in_1QFixRenewal0000000002", SubscriptionID: fixSub, SubscriptionMetadata: meta,
			StripeCustomerID: "cus_RFixMember0001", Currency: "usd", Status: "open",
			BillingReason: "subscription_cycle", ChargeID: "ch_3QFixRenewalFail00000001",
			PaymentIntentID: "pi_3QFixRenewal00000000002", PeriodStart: p2.start, PeriodEnd: p2.end,
			AttemptCount: 1, NextPaymentAttempt: p2.start.Add(3*day + time.Hour)}}},
		{TypeCheckoutCompleted, KindCheckout, Event{Created: t0.Add(3 * time.Second), Checkout: &Checkout{
			ID: "cs_test_b1FixMembership000000000000000000000000000000000000000", SubscriptionID: fixSub,
			StripeCustomerID: "cus_RFixMember0001", PaymentStatus: "paid", Metadata: meta}}},
	}
	for _, shape := range shapes {
		for _, tt := range tests {
			t.Run(shape+"/"+tt.typ, func(t *testing.T) {
				ev := build(t, shape, tt.typ, "evt_x", tt.want.Created, nil)
				want := tt.want
				want.ID, want.Type, want.Kind = "evt_x", tt.typ, tt.kind
				if shape == shapeNew && want.Invoice != nil {
					// From 2025-03-31 an invoice names no charge or payment
					// intent (invoice_payment.paid does).
					inv := *want.Invoice
					inv.ChargeID, inv.PaymentIntentID = "", ""
					want.Invoice = &inv
				}
				if diff := cmp.Diff(want, ev); diff != "" {
					t.Errorf("decoded event (-want +got):\n%s", diff)
				}
			})
		}
	}
	t.Run(shapeNew+"/"+TypeInvoicePaymentPaid, func(t *testing.T) {
		ev := build(t, shapeNew, TypeInvoicePaymentPaid, "evt_p", t0, nil)
		want := &InvoicePayment{ID: "inpay_1QFixSignup0000000001", InvoiceID: "in_1QFixSignup00000000001",
			PaymentIntentID: "pi_3QFixSignup000000000001", Status: "paid"}
		if ev.Kind != KindInvoicePayment || !cmp.Equal(ev.InvoicePayment, want) {
			t.Errorf("invoice payment = %d %+v, want %+v", ev.Kind, ev.InvoicePayment, want)
		}
	})
}

// Every fixture file is a Stripe event of the API version its directory
// names, so the fixtures cannot drift into a third shape.
func TestFixturesNameTheirVersion(t *testing.T) {
	for _, shape := range shapes {
		files, err := filepath.Glob(filepath.Join("testdata", shape, "*.json"))
		if err != nil || len(files) < 9 {
			t.Fatalf("%s: %d fixtures, %v", shape, len(files), err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var env struct {
				Object     string `json:"object"`
				APIVersion string `json:"api_version"`
				Type       string `json:"type"`
			}
			if err := json.Unmarshal(b, &env); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if env.Object != "event" || env.APIVersion[:10] != shape || env.Type+".json" != filepath.Base(f) {
				t.Errorf("%s: object %q, api_version %q, type %q", f, env.Object, env.APIVersion, env.Type)
			}
		}
	}
}

// A subscription of several items is paid for from its earliest item start
// to its latest item end; an expanded customer is read by id.
func TestDecodeSubscriptionItemsAndExpansion(t *testing.T) {
	body := `{"id":"sub_1","object":"subscription","status":"active","customer":{"id":"cus_9","object":"customer"},
		"items":{"data":[{"current_period_start":200,"current_period_end":900},{"current_period_start":100,"current_period_end":1000}]}}`
	s, err := DecodeSubscription([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if s.StripeCustomerID != "cus_9" || s.PeriodStart != unix(100) || s.PeriodEnd != unix(1000) {
		t.Errorf("got customer %q period %v–%v", s.StripeCustomerID, s.PeriodStart, s.PeriodEnd)
	}
	if !s.decidable() {
		t.Error("an active subscription with a period is decidable")
	}
	for _, b := range []string{
		`{"id":"sub_1","object":"subscription","status":"active"}`,                                                  // no period
		`{"id":"sub_1","object":"subscription","status":"dormant","current_period_start":1,"current_period_end":2}`, // unknown status
		`{"id":"sub_1","object":"subscription","status":"active","current_period_start":5,"current_period_end":5}`,  // empty period
	} {
		s, err := DecodeSubscription([]byte(b))
		if err != nil || s.decidable() {
			t.Errorf("%s: decidable=%v err=%v, want an undecidable payload", b, s != nil && s.decidable(), err)
		}
	}
}

// Hostile payloads are permanent errors naming the event, never panics or
// transient errors.
func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name, typ, object string
	}{
		{"not json", TypeSubscriptionUpdated, `{"id":`},
		{"wrong object", TypeSubscriptionUpdated, `{"id":"in_1","object":"invoice"}`},
		{"no id", TypeInvoicePaid, `{"object":"invoice"}`},
		{"null object", TypeInvoicePaid, `null`},
		{"payment mode checkout", TypeCheckoutCompleted, `{"id":"cs_1","object":"checkout.session","mode":"payment"}`},
		{"checkout without subscription", TypeCheckoutCompleted, `{"id":"cs_1","object":"checkout.session","mode":"subscription"}`},
		{"invoice payment without invoice", TypeInvoicePaymentPaid, `{"id":"inpay_1","object":"invoice_payment"}`},
		{"period of the wrong type", TypeSubscriptionUpdated, `{"id":"sub_1","object":"subscription","current_period_end":"soon"}`},
		{"unknown type", "customer.created", `{"id":"cus_1","object":"customer"}`},
		{"subscription id not an id", TypeSubscriptionUpdated, `{"id":"sub_1\u0000","object":"subscription"}`},
		{"subscription customer not an id", TypeSubscriptionUpdated, `{"id":"sub_1","object":"subscription","customer":"cus_1'"}`},
		{"invoice subscription not an id", TypeInvoicePaid, `{"id":"in_1","object":"invoice","subscription":"sub 1"}`},
		{"invoice charge not an id", TypeInvoicePaid, `{"id":"in_1","object":"invoice","subscription":"sub_1","charge":"ch_\u0000"}`},
		{"checkout subscription not an id", TypeCheckoutCompleted, `{"id":"cs_1","object":"checkout.session","mode":"subscription","subscription":"sub_\u0000"}`},
		{"invoice payment invoice not an id", TypeInvoicePaymentPaid, `{"id":"inpay_1","object":"invoice_payment","invoice":"in_\u0000"}`},
		{"refund charge not an id", TypeChargeRefunded, `{"id":"ch_\u0000","object":"charge"}`},
		{"dispute charge not an id", TypeDisputeCreated, `{"id":"du_1","object":"dispute","charge":"ch_1;"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode("evt_bad", tt.typ, 1700000000, false, []byte(tt.object))
			var fe *fault.Error
			if !errors.As(err, &fe) || fe.Code != fault.Invalid || fault.ActionOf(err) != fault.DeadLetter {
				t.Fatalf("Decode = %v, want a fault.Invalid", err)
			}
		})
	}
	if _, err := Decode("", TypeInvoicePaid, 1700000000, false, []byte(`{"id":"in_1","object":"invoice"}`)); fault.CodeOf(err) != fault.Invalid {
		t.Errorf("event without id: %v", err)
	}
	if !IsSubscriptionCheckout([]byte(`{"mode":"subscription"}`)) || IsSubscriptionCheckout([]byte(`{"mode":"payment"}`)) ||
		IsSubscriptionCheckout([]byte(`nope`)) {
		t.Error("IsSubscriptionCheckout misreads the mode")
	}
}
