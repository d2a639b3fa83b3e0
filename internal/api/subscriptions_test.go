package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/api/apitest"
	"github.com/paystream/paystream/internal/subscription"
	"github.com/paystream/paystream/model"
)

func TestSubscriptionListPages(t *testing.T) {
	h := newHarness(t, nil)
	plan := h.plan("creator_1", 900, 0)
	base := time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Second)
	statuses := []string{model.SubscriptionCanceled, model.SubscriptionActive, model.SubscriptionPastDue,
		model.SubscriptionTrialing, model.SubscriptionIncompleteExpired}
	var subs []*model.Subscription // oldest first
	for i, st := range statuses {
		subs = append(subs, h.subscribe("sub_hist_"+string(rune('a'+i)), "hist", plan, st, base.Add(time.Duration(i)*time.Hour)))
	}
	// Two in the same instant: the id breaks the tie.
	same := base.Add(10 * time.Hour)
	subs = append(subs, h.subscribe("sub_hist_x", "hist", plan, model.SubscriptionActive, same),
		h.subscribe("sub_hist_y", "hist", plan, model.SubscriptionActive, same))
	h.subscribe("sub_other", "other", plan, model.SubscriptionActive, base)

	var got []map[string]any
	cursor := ""
	for page := 0; ; page++ {
		path := "/v1/customers/hist/subscriptions?limit=3"
		if cursor != "" {
			path += "&starting_after=" + cursor
		}
		r := h.call(http.MethodGet, path, keyA, nil)
		if r.Status != http.StatusOK || r.Body["object"] != "list" {
			t.Fatalf("page %d: %d %s", page, r.Status, r.Raw)
		}
		for _, d := range r.Body["data"].([]any) {
			got = append(got, d.(map[string]any))
		}
		more := r.Body["has_more"].(bool)
		if more != (len(got) < len(subs)) {
			t.Fatalf("page %d: has_more = %v after %d of %d", page, more, len(got), len(subs))
		}
		if !more {
			break
		}
		cursor = got[len(got)-1]["id"].(string)
	}
	want := []string{"sub_hist_y", "sub_hist_x", "sub_hist_e", "sub_hist_d", "sub_hist_c", "sub_hist_b", "sub_hist_a"}
	if len(got) != len(want) {
		t.Fatalf("listed %d, want %d", len(got), len(want))
	}
	for i, g := range got {
		if g["id"] != want[i] {
			t.Errorf("position %d = %v, want %s", i, g["id"], want[i])
		}
	}
	byID := map[string]map[string]any{}
	for _, g := range got {
		byID[g["id"].(string)] = g
	}
	for _, tt := range []struct {
		id     string
		status string
		active bool
	}{
		{"sub_hist_a", "canceled", false}, {"sub_hist_b", "active", true}, {"sub_hist_c", "past_due", true},
		{"sub_hist_d", "trialing", true}, {"sub_hist_e", "incomplete_expired", false},
	} {
		g := byID[tt.id]
		if g["status"] != tt.status || g["active"] != tt.active || (g["access_until"] == nil) == tt.active {
			t.Errorf("%s: %v", tt.id, g)
		}
		if p := g["plan"].(map[string]any); p["id"] != plan.ID.String() || p["price_cents"] != 900.0 || p["archived"] != false {
			t.Errorf("%s plan: %v", tt.id, p)
		}
	}
	for _, q := range []string{"limit=0", "limit=101", "limit=x", "starting_after=sub_other", "starting_after=sub_nope",
		"starting_after=a%00b", "limit=1;x=2"} {
		if r := h.call(http.MethodGet, "/v1/customers/hist/subscriptions?"+q, keyA, nil); r.Status != http.StatusBadRequest ||
			r.errCode() != api.CodeInvalidRequest {
			t.Errorf("%s: %d %s", q, r.Status, r.Raw)
		}
	}
	if r := h.call(http.MethodGet, "/v1/customers/nobody/subscriptions", keyA, nil); r.Status != http.StatusOK ||
		len(r.Body["data"].([]any)) != 0 || r.Body["has_more"] != false {
		t.Errorf("no subscriptions: %s", r.Raw)
	}
	if r := h.call(http.MethodGet, "/v1/customers/%20hist/subscriptions", keyA, nil); r.Status != http.StatusBadRequest {
		t.Errorf("padded customer: %d %s", r.Status, r.Raw)
	}
}

// A subscription recorded by the webhooks and known to the fake Stripe, as
// after a checkout.
func (h *harness) stripeSubscription(customer string, plan *model.SubscriptionPlan) *model.Subscription {
	h.t.Helper()
	r := h.subCheckout(customer, plan.ID)
	if r.Status != http.StatusCreated {
		h.t.Fatalf("checkout: %d %s", r.Status, r.Raw)
	}
	return h.deliver(subscription.TypeSubscriptionCreated, h.stripe.CompleteSession(r.Body["id"].(string)), time.Now())
}

func TestCancelAndResume(t *testing.T) {
	h := newHarness(t, nil)
	plan := h.plan("creator_1", 900, 0)
	sub := h.stripeSubscription("u1", plan)
	path := "/v1/subscriptions/" + sub.ID

	// Idempotent: twice is once.
	for i := range 2 {
		r := h.call(http.MethodPost, path+"/cancel", keyA, nil)
		if r.Status != http.StatusOK || r.Body["cancel_at_period_end"] != true || r.Body["status"] != "active" ||
			!mustTime(t, r.Body["access_until"]).Equal(sub.CurrentPeriodEnd) || r.Body["customer_id"] != "u1" {
			t.Fatalf("cancel #%d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	for i := range 2 {
		r := h.call(http.MethodPost, path+"/resume", keyA, nil)
		if r.Status != http.StatusOK || r.Body["cancel_at_period_end"] != false || r.Body["canceled_at"] != nil ||
			!mustTime(t, r.Body["access_until"]).Equal(sub.CurrentPeriodEnd) {
			t.Fatalf("resume #%d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	var updates int
	for _, c := range h.stripe.Calls() {
		if c.Method == http.MethodPost && c.Path == "/v1/subscriptions/"+sub.ID {
			updates++
		}
	}
	if updates != 4 {
		t.Errorf("subscription updates at Stripe = %d, want 4", updates)
	}

	h.subscribe("sub_gone", "u2", plan, model.SubscriptionCanceled, time.Now())
	if r := h.call(http.MethodPost, "/v1/subscriptions/sub_gone/cancel", keyA, nil); r.Status != http.StatusConflict ||
		r.errCode() != api.CodeSubscriptionEnded {
		t.Errorf("cancel of a canceled subscription: %d %s", r.Status, r.Raw)
	}
	if r := h.call(http.MethodPost, "/v1/subscriptions/sub_unknown/cancel", keyA, nil); r.Status != http.StatusNotFound ||
		r.errCode() != api.CodeNotFound {
		t.Errorf("unknown subscription: %d %s", r.Status, r.Raw)
	}
	if r := h.call(http.MethodPost, "/v1/subscriptions/a%00b/resume", keyA, nil); r.Status != http.StatusBadRequest {
		t.Errorf("id with a NUL: %d %s", r.Status, r.Raw)
	}
	// Ended at Stripe before its webhook arrived: Stripe refuses, the API
	// asks and says so.
	h.stripe.CancelNow(sub.ID)
	if r := h.call(http.MethodPost, path+"/resume", keyA, nil); r.Status != http.StatusConflict || r.errCode() != api.CodeSubscriptionEnded {
		t.Errorf("resume of a subscription Stripe ended: %d %s", r.Status, r.Raw)
	}
	if h.subscriptionRow(sub.ID).Status != model.SubscriptionActive {
		t.Error("the API wrote the subscription row")
	}
}

func TestCancelStripeFailures(t *testing.T) {
	h := newHarness(t, nil)
	plan := h.plan("creator_1", 900, 0)
	sub := h.stripeSubscription("u1", plan)
	h.stripe.FailNext(apitest.Failure{Status: 500})
	if r := h.call(http.MethodPost, "/v1/subscriptions/"+sub.ID+"/cancel", keyA, nil); r.Status != http.StatusBadGateway ||
		r.errCode() != api.CodeStripeError {
		t.Errorf("Stripe 500: %d %s", r.Status, r.Raw)
	}
	h.stripe.FailNext(apitest.Failure{Status: 429})
	if r := h.call(http.MethodPost, "/v1/subscriptions/"+sub.ID+"/cancel", keyA, nil); r.Status != http.StatusServiceUnavailable ||
		r.errCode() != api.CodeStripeUnavailable {
		t.Errorf("Stripe 429: %d %s", r.Status, r.Raw)
	}
	// Stripe knows no such subscription (another account or mode): its
	// refusal is not an ended subscription.
	h.subscribe("sub_not_in_stripe", "u3", plan, model.SubscriptionActive, time.Now())
	if r := h.call(http.MethodPost, "/v1/subscriptions/sub_not_in_stripe/cancel", keyA, nil); r.Status != http.StatusBadGateway ||
		r.errCode() != api.CodeStripeError {
		t.Errorf("unknown at Stripe: %d %s", r.Status, r.Raw)
	}
}

func TestPortalSession(t *testing.T) {
	h := newHarness(t, func(c *api.Config) { c.PortalReturnURL = "https://shop.example/account" })
	plan := h.plan("creator_1", 900, 0)
	h.subscribe("sub_old", "u1", plan, model.SubscriptionCanceled, time.Now().Add(-time.Hour))
	h.subscribe("sub_new", "u1", plan, model.SubscriptionActive, time.Now())
	if _, err := h.db.NewUpdate().Model((*model.Subscription)(nil)).Set("stripe_customer_id = 'cus_newer'").
		Where("id = 'sub_new'").Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.stripe.AddCustomer("cus_newer")

	r := h.call(http.MethodPost, "/v1/customers/u1/portal_sessions", keyA, []byte(`{"return_url":"https://a.cdn.example/back"}`))
	if r.Status != http.StatusCreated || r.Body["return_url"] != "https://a.cdn.example/back" || !strings.HasPrefix(r.Body["id"].(string), "bps_") {
		t.Fatalf("portal: %d %s", r.Status, r.Raw)
	}
	calls := h.stripe.Calls()
	if c := calls[len(calls)-1]; c.Form["customer"] != "cus_newer" || c.Form["return_url"] != "https://a.cdn.example/back" {
		t.Errorf("portal call %+v, want the newest subscription's Stripe customer", c)
	}
	if r := h.call(http.MethodPost, "/v1/customers/u1/portal_sessions", keyA, []byte(`{}`)); r.Status != http.StatusCreated ||
		r.Body["return_url"] != "https://shop.example/account" {
		t.Errorf("default return_url: %d %s", r.Status, r.Raw)
	}
	for name, tt := range map[string]struct {
		path, body string
		status     int
		code       string
	}{
		"no subscription":     {"/v1/customers/nobody/portal_sessions", "", 404, api.CodeNotFound},
		"host not allowed":    {"/v1/customers/u1/portal_sessions", `{"return_url":"https://evil.example/"}`, 400, api.CodeInvalidRequest},
		"unknown field":       {"/v1/customers/u1/portal_sessions", `{"customer":"cus_x"}`, 400, api.CodeInvalidRequest},
		"customer not text":   {"/v1/customers/a%07b/portal_sessions", "", 400, api.CodeInvalidRequest},
		"body not an object":  {"/v1/customers/u1/portal_sessions", `[]`, 400, api.CodeInvalidRequest},
		"malformed query":     {"/v1/customers/u1/portal_sessions?a=%zz", "", 400, api.CodeInvalidRequest},
		"url not http(s)":     {"/v1/customers/u1/portal_sessions", `{"return_url":"javascript:alert(1)"}`, 400, api.CodeInvalidRequest},
		"url with a NUL byte": {"/v1/customers/u1/portal_sessions", `{"return_url":"https://shop.example/\u0000"}`, 400, api.CodeInvalidRequest},
	} {
		t.Run(name, func(t *testing.T) {
			var body any
			if tt.body != "" {
				body = []byte(tt.body)
			}
			if r := h.call(http.MethodPost, tt.path, keyA, body); r.Status != tt.status || r.errCode() != tt.code {
				t.Errorf("got %d %s, want %d %s", r.Status, r.Raw, tt.status, tt.code)
			}
		})
	}
	h.stripe.FailNext(apitest.Failure{Status: 500})
	if r := h.call(http.MethodPost, "/v1/customers/u1/portal_sessions", keyA, nil); r.Status != http.StatusBadGateway {
		t.Errorf("Stripe 500: %d %s", r.Status, r.Raw)
	}
}

func TestPortalReturnURLConfig(t *testing.T) {
	c := api.Config{Keys: []string{keyA}, StripeSecretKey: "sk_test_x"}.WithDefaults()
	if c.PortalReturnURL != api.DefaultPortalReturnURL {
		t.Errorf("default = %q", c.PortalReturnURL)
	}
	c = api.Config{Keys: []string{keyA}, StripeSecretKey: "sk_test_x", SuccessURL: "https://shop.example/ok",
		CancelURL: "https://shop.example/no", PortalReturnURL: "https://account.example/"}.WithDefaults()
	// The onboarding URLs keep their localhost defaults, so their host joins too.
	if strings.Join(c.AllowedHosts, ",") != "shop.example,account.example,localhost" {
		t.Errorf("default allow-list = %v, want the defaults' hosts once each", c.AllowedHosts)
	}
	bad := api.Config{Keys: []string{keyA}, StripeSecretKey: "sk_test_x", PortalReturnURL: "ftp://x/"}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "BILLING_PORTAL_RETURN_URL") {
		t.Errorf("bad portal URL: %v", err)
	}
}
