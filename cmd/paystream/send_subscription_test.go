package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/subscription"
)

// Every subscription event type is one `paystream send` away, signed like
// Stripe, with the demo plan's contract and price by default.
func TestSendSubscriptionEvents(t *testing.T) {
	const secret = "whsec_test_send_sub"
	for _, typ := range subscription.HandledTypes() {
		t.Run(typ, func(t *testing.T) {
			rec := &recorder{secret: secret}
			srv := httptest.NewServer(rec)
			t.Cleanup(srv.Close)
			var out, errOut bytes.Buffer
			err := run(context.Background(), []string{"send", typ, "--url", srv.URL, "--subscription", "sub_given", "--invoice", "in_given"},
				config.MapEnv(map[string]string{"STRIPE_WEBHOOK_SECRET": secret}), &out, &errOut)
			if err != nil {
				t.Fatalf("send: %v\n%s", err, errOut.String())
			}
			if len(rec.events) != 1 || string(rec.events[0].Type) != typ || !strings.Contains(out.String(), "-> 200") {
				t.Fatalf("received %d events; output %s", len(rec.events), out.String())
			}
			ev := rec.events[0]
			switch {
			case strings.HasPrefix(typ, "customer.subscription."):
				if ev.GetObjectValue("id") != "sub_given" || ev.GetObjectValue("metadata", "planId") != demo.CreatorPlanID ||
					ev.GetObjectValue("items", "data", "0", "price", "unit_amount") != "999" {
					t.Errorf("subscription %v", ev.Data.Object)
				}
			case strings.HasPrefix(typ, "invoice."):
				if ev.GetObjectValue("id") != "in_given" || ev.GetObjectValue("subscription") != "sub_given" ||
					ev.GetObjectValue("subscription_details", "metadata", "customerId") != demo.CustomerID {
					t.Errorf("invoice %v", ev.Data.Object)
				}
			default:
				if ev.GetObjectValue("invoice") != "in_given" || !strings.HasPrefix(ev.APIVersion, "2025-03-31") {
					t.Errorf("invoice payment %v (api %s)", ev.Data.Object, ev.APIVersion)
				}
			}
			if !strings.Contains(out.String(), "subscription=sub_given") && !strings.Contains(out.String(), "invoice=in_given") {
				t.Errorf("output does not name the ids: %s", out.String())
			}
		})
	}
}

// `paystream send subscription-lifecycle` posts a whole membership, one
// event after the other, and says what each one is.
func TestSendSubscriptionLifecycle(t *testing.T) {
	const secret = "whsec_test_lifecycle"
	rec := &recorder{secret: secret}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"send", "subscription-lifecycle", "--every", "0s", "--url", srv.URL, "--customer", "user_7",
		"--plan", demo.OrganizationPlanID}, config.MapEnv(map[string]string{"STRIPE_WEBHOOK_SECRET": secret}), &out, &errOut)
	if err != nil {
		t.Fatalf("send: %v\n%s", err, errOut.String())
	}
	if len(rec.events) != 13 || !strings.Contains(out.String(), "13/13 customer.subscription.deleted") ||
		!strings.Contains(out.String(), "past_due") || !strings.Contains(out.String(), "2499 usd") {
		t.Fatalf("received %d events; output:\n%s", len(rec.events), out.String())
	}
	for _, ev := range rec.events {
		if ev.Type == "customer.subscription.created" && (ev.GetObjectValue("metadata", "customerId") != "user_7" ||
			ev.GetObjectValue("metadata", "planId") != demo.OrganizationPlanID) {
			t.Errorf("contract %v", ev.Data.Object["metadata"])
		}
	}
	// A refused event stops the sequence.
	rec2 := &recorder{secret: "whsec_other"}
	srv2 := httptest.NewServer(rec2)
	t.Cleanup(srv2.Close)
	out.Reset()
	err = run(context.Background(), []string{"send", "subscription-lifecycle", "--every", "0s", "--url", srv2.URL, "--secret", secret},
		config.MapEnv(nil), &out, &errOut)
	if err == nil || strings.Count(out.String(), "-> 401") != 1 {
		t.Fatalf("err %v; output:\n%s", err, out.String())
	}
}
