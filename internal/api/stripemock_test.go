package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/checkout/session"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// The Checkout Session create the API sends through stripe-go is a valid
// Stripe request, and the API records what stripe-mock answers.
func TestCheckoutAgainstStripeMock(t *testing.T) {
	base := testenv.StripeMock(t)
	h := newHarness(t, func(c *api.Config) {
		c.StripeAPIBase = base
		c.StripeSecretKey = "sk_test_123"
	})
	r := h.checkout("user_mock", h.paid, "Idempotency-Key", "mock-1")
	if r.Status != http.StatusCreated {
		t.Fatalf("create against stripe-mock: %d %s", r.Status, r.Raw)
	}
	id, _ := r.Body["id"].(string)
	if !strings.HasPrefix(id, "cs_") {
		t.Errorf("session id %q", id)
	}
	var row model.CheckoutSession
	if err := h.db.NewSelect().Model(&row).Where("id = ?", id).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if row.CustomerID != "user_mock" || row.Status != model.CheckoutOpen || row.AmountCents != 2999 {
		t.Errorf("row = %+v", row)
	}
	// The acceptance above means something only because stripe-mock does
	// refuse what Stripe refuses: the same create with a bad enum is a 400.
	b := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{URL: stripe.String(base),
		MaxNetworkRetries: stripe.Int64(0), EnableTelemetry: stripe.Bool(false),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}})
	_, err := session.Client{B: b, Key: "sk_test_123"}.New(&stripe.CheckoutSessionParams{
		Mode: stripe.String("barter"), SuccessURL: stripe.String("https://shop.example/ok"),
	})
	var se *stripe.Error
	if !errors.As(err, &se) || se.HTTPStatusCode != http.StatusBadRequest {
		t.Errorf("stripe-mock accepted mode=barter: %v", err)
	}
}

// The subscription routes' Stripe requests — a Checkout Session in
// subscription mode (recurring price_data, subscription_data with metadata
// and a trial, an existing customer), its retrieval, the subscription
// update and the Billing Portal session — are valid Stripe requests through
// the real stripe-go client, and the API reads stripe-mock's answers.
func TestSubscriptionRoutesAgainstStripeMock(t *testing.T) {
	base := testenv.StripeMock(t)
	h := newHarness(t, func(c *api.Config) {
		c.StripeAPIBase = base
		c.StripeSecretKey = "sk_test_123"
	})
	plan := h.plan("creator_1", 900, 7)
	// A canceled earlier membership names the Stripe customer to reuse.
	h.subscribe("sub_earlier", "user_mock", plan, model.SubscriptionCanceled, time.Now().Add(-time.Hour))
	r := h.subCheckout("user_mock", plan.ID, "Idempotency-Key", "mock-sub-1")
	if r.Status != http.StatusCreated || !strings.HasPrefix(r.Body["id"].(string), "cs_") {
		t.Fatalf("subscription checkout against stripe-mock: %d %s", r.Status, r.Raw)
	}
	// The reuse check retrieves the open session (stripe-mock's fixture
	// says open), and the session is reused.
	if again := h.subCheckout("user_mock", plan.ID); again.Status != http.StatusOK || again.Body["id"] != r.Body["id"] {
		t.Errorf("second checkout against stripe-mock: %d %s, want 200 with %v", again.Status, again.Raw, r.Body["id"])
	}

	live := h.subscribe("sub_mock_live", "user_mock2", plan, model.SubscriptionActive, time.Now())
	// stripe-mock reflects cancel_at_period_end; the rest of its answer is
	// random (a period ending before it starts), which the API shows as the
	// row's own state.
	for action, flag := range map[string]bool{"cancel": true, "resume": false} {
		r := h.call(http.MethodPost, "/v1/subscriptions/"+live.ID+"/"+action, keyA, nil)
		if r.Status != http.StatusOK || r.Body["object"] != "subscription" || r.Body["customer_id"] != "user_mock2" ||
			r.Body["cancel_at_period_end"] != flag {
			t.Errorf("%s against stripe-mock: %d %s", action, r.Status, r.Raw)
		}
	}
	if r := h.call(http.MethodPost, "/v1/customers/user_mock2/portal_sessions", keyA, nil); r.Status != http.StatusCreated ||
		r.Body["url"] == "" {
		t.Errorf("portal session against stripe-mock: %d %s", r.Status, r.Raw)
	}
}
