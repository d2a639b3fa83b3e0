package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/subscription"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// A membership end to end through the API, with the processor's code
// (internal/subscription) applying the webhooks of the stateful fake
// Stripe: a checkout in subscription mode with the metadata contract on
// subscription_data.metadata and the session, the subscription Stripe
// creates from it recorded from that metadata, listed and granting access;
// cancelled at the period end (Stripe's state answered at once, the row
// converging with the webhook), resumed, and the Billing Portal of its
// Stripe customer. In both payload shapes.
func TestMembershipThroughTheAPI(t *testing.T) {
	for name, onItems := range map[string]bool{"period on the subscription": false, "period on the items": true} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.stripe.PeriodOnItems = onItems
			plan := h.plan("creator_1", 900, 7)

			r := h.subCheckout("member", plan.ID, "Idempotency-Key", "join-1")
			if r.Status != http.StatusCreated || r.Body["object"] != "checkout_session" || r.Body["mode"] != "subscription" ||
				r.Body["plan_id"] != plan.ID.String() || r.Body["amount_cents"] != 900.0 || r.Body["trial_days"] != 7.0 ||
				r.Body["interval"] != "month" || r.Body["status"] != "open" {
				t.Fatalf("checkout: %d %s", r.Status, r.Raw)
			}
			sessionID := r.Body["id"].(string)
			calls := h.stripe.Calls()
			if len(calls) != 1 || calls[0].Path != "/v1/checkout/sessions" {
				t.Fatalf("stripe calls = %+v", calls)
			}
			f := calls[0].Form
			for k, want := range map[string]string{
				"mode": "subscription", "line_items[0][price_data][unit_amount]": "900",
				"line_items[0][price_data][currency]":                  "usd",
				"line_items[0][price_data][recurring][interval]":       "month",
				"line_items[0][price_data][recurring][interval_count]": "1",
				"subscription_data[trial_period_days]":                 "7",
				"subscription_data[metadata][customerId]":              "member",
				"subscription_data[metadata][planId]":                  plan.ID.String(),
				"subscription_data[metadata][organizationId]":          h.org.String(),
				"metadata[planId]":                                     plan.ID.String(),
				"client_reference_id":                                  "member",
			} {
				if f[k] != want {
					t.Errorf("form %s = %q, want %q", k, f[k], want)
				}
			}
			if _, ok := f["customer"]; ok {
				t.Errorf("a first membership names a Stripe customer %q; Checkout creates it", f["customer"])
			}
			if k := calls[0].IdempotencyKey; k == "join-1" || !strings.HasPrefix(k, "paystream-subscription-checkout-") {
				t.Errorf("Idempotency-Key sent to Stripe = %q, want the caller's key hashed under the route's prefix", k)
			}

			// The customer pays; Stripe's customer.subscription.created
			// reaches the processor, which finds paystream's customer and
			// plan in the subscription's metadata.
			created := h.stripe.CompleteSession(sessionID)
			row := h.deliver(subscription.TypeSubscriptionCreated, created, time.Now())
			if row.CustomerID != "member" || row.PlanID != plan.ID || row.Status != model.SubscriptionTrialing ||
				row.AccessUntil == nil || !row.AccessUntil.Equal(row.CurrentPeriodEnd) || row.StripeCustomerID == nil {
				t.Fatalf("recorded subscription = %+v", row)
			}
			subID := row.ID

			list := h.call(http.MethodGet, "/v1/customers/member/subscriptions", keyA, nil)
			data, _ := list.Body["data"].([]any)
			if list.Status != http.StatusOK || len(data) != 1 || list.Body["has_more"] != false {
				t.Fatalf("list: %d %s", list.Status, list.Raw)
			}
			item := data[0].(map[string]any)
			p := item["plan"].(map[string]any)
			if item["id"] != subID || item["status"] != "trialing" || item["cancel_at_period_end"] != false || item["active"] != true ||
				!mustTime(t, item["access_until"]).Equal(*row.AccessUntil) || p["id"] != plan.ID.String() || p["creator_id"] != "creator_1" {
				t.Errorf("listed: %s", list.Raw)
			}

			acc := h.call(http.MethodGet, "/v1/customers/member/access/"+h.paid.String(), keyB, nil)
			sub, _ := acc.Body["subscription"].(map[string]any)
			if acc.Status != http.StatusOK || acc.Body["active"] != true || acc.Body["access_type"] != "subscription" ||
				acc.Body["purchase"] != nil || sub["id"] != subID || sub["status"] != "trialing" ||
				!mustTime(t, acc.Body["expires_at"]).Equal(*row.AccessUntil) {
				t.Errorf("access: %d %s", acc.Status, acc.Raw)
			}

			// Cancel: Stripe's state at once; the row when the webhook comes.
			c := h.call(http.MethodPost, "/v1/subscriptions/"+subID+"/cancel", keyA, nil)
			if c.Status != http.StatusOK || c.Body["id"] != subID || c.Body["cancel_at_period_end"] != true ||
				c.Body["status"] != "trialing" || !mustTime(t, c.Body["access_until"]).Equal(row.CurrentPeriodEnd) ||
				!mustTime(t, c.Body["cancel_at"]).Equal(row.CurrentPeriodEnd) || c.Body["active"] != true {
				t.Fatalf("cancel: %d %s", c.Status, c.Raw)
			}
			if h.subscriptionRow(subID).CancelAtPeriodEnd {
				t.Error("the API wrote the subscription row; only the webhook may")
			}
			updated := h.deliver(subscription.TypeSubscriptionUpdated, h.stripe.Subscription(subID), time.Now())
			if !updated.CancelAtPeriodEnd || !updated.AccessUntil.Equal(mustTime(t, c.Body["access_until"])) {
				t.Errorf("after the webhook: %+v, want what cancel answered", updated)
			}
			if again := h.subCheckout("member", plan.ID); again.Status != http.StatusConflict ||
				again.errCode() != api.CodeAlreadySubscribed || !strings.Contains(errMessage(again), "resume") {
				t.Errorf("checkout while set to cancel: %d %s, want 409 saying resume", again.Status, again.Raw)
			}

			res := h.call(http.MethodPost, "/v1/subscriptions/"+subID+"/resume", keyA, nil)
			if res.Status != http.StatusOK || res.Body["cancel_at_period_end"] != false || res.Body["cancel_at"] != nil {
				t.Fatalf("resume: %d %s", res.Status, res.Raw)
			}
			if resumed := h.deliver(subscription.TypeSubscriptionUpdated, h.stripe.Subscription(subID), time.Now()); resumed.CancelAtPeriodEnd {
				t.Errorf("after the resume webhook: %+v", resumed)
			}

			portal := h.call(http.MethodPost, "/v1/customers/member/portal_sessions", keyA, nil)
			if portal.Status != http.StatusCreated || portal.Body["object"] != "billing_portal_session" ||
				!strings.HasPrefix(portal.Body["url"].(string), "https://billing.stripe.test/") ||
				portal.Body["customer_id"] != "member" || portal.Body["return_url"] != api.DefaultPortalReturnURL {
				t.Errorf("portal: %d %s", portal.Status, portal.Raw)
			}
			calls = h.stripe.Calls()
			if last := calls[len(calls)-1]; last.Path != "/v1/billing_portal/sessions" || last.Form["customer"] != *row.StripeCustomerID {
				t.Errorf("portal call %+v, want the subscription's Stripe customer %s", last, *row.StripeCustomerID)
			}

			// A second membership goes to the same Stripe customer, so the
			// portal shows both.
			org := h.plan("", 5000, 0)
			if r := h.subCheckout("member", org.ID); r.Status != http.StatusCreated || r.Body["trial_days"] != 0.0 {
				t.Fatalf("second plan: %d %s", r.Status, r.Raw)
			}
			calls = h.stripe.Calls()
			last := calls[len(calls)-1]
			if last.Form["customer"] != *row.StripeCustomerID {
				t.Errorf("second checkout customer = %q, want %s", last.Form["customer"], *row.StripeCustomerID)
			}
			if _, ok := last.Form["subscription_data[trial_period_days]"]; ok {
				t.Errorf("a plan without trial sent trial_period_days")
			}
			if v := testenv.Metric(t, h.reg, "paystream_api_subscription_checkouts_total", map[string]string{"result": "created"}); v != 2 {
				t.Errorf("subscription checkouts created = %v, want 2", v)
			}
		})
	}
}
