package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/api/apitest"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// An open session is reused only while Stripe says it is open: expired,
// it is set aside for a new one; completed before its webhook arrived, the
// customer just subscribed (409, never a second subscription); completed
// and its subscription since ended, a new one is made.
func TestSubscriptionCheckoutReusesOnlyWhatStripeSaysIsOpen(t *testing.T) {
	h := newHarness(t, nil)
	plan := h.plan("creator_1", 900, 0)
	first := h.subCheckout("u1", plan.ID)
	if first.Status != http.StatusCreated {
		t.Fatalf("first: %d %s", first.Status, first.Raw)
	}
	id := first.Body["id"].(string)
	if again := h.subCheckout("u1", plan.ID); again.Status != http.StatusOK || again.Body["id"] != id {
		t.Errorf("second: %d %s, want 200 with %s", again.Status, again.Raw, id)
	}
	calls := h.stripe.Calls()
	if len(calls) != 2 || calls[1].Method != http.MethodGet || calls[1].Path != "/v1/checkout/sessions/"+id {
		t.Errorf("stripe calls %+v, want the create and a retrieve of the open session", calls)
	}
	if other := h.subCheckout("u2", plan.ID); other.Status != http.StatusCreated || other.Body["id"] == id {
		t.Errorf("another customer: %d %s", other.Status, other.Raw)
	}

	h.stripe.ExpireSession(id)
	fresh := h.subCheckout("u1", plan.ID)
	if fresh.Status != http.StatusCreated || fresh.Body["id"] == id {
		t.Fatalf("after Stripe expired it: %d %s, want a new session", fresh.Status, fresh.Raw)
	}
	rows := map[string]model.SubscriptionCheckoutSession{}
	for _, r := range h.subscriptionSessions() {
		rows[r.ID] = r
	}
	if r := rows[id]; r.Status != model.CheckoutExpired || r.ExpiredAt == nil {
		t.Errorf("the expired session's row: %+v", r)
	}

	// Paid, and the subscription's webhook has not come yet.
	freshID := fresh.Body["id"].(string)
	sub := h.stripe.CompleteSession(freshID)
	r := h.subCheckout("u1", plan.ID)
	if r.Status != http.StatusConflict || r.errCode() != api.CodeAlreadySubscribed || !strings.Contains(errMessage(r), "being recorded") {
		t.Fatalf("after paying, before the webhook: %d %s", r.Status, r.Raw)
	}
	// The webhook records it: the live subscription answers 409 itself.
	rec := h.deliver("customer.subscription.created", sub, time.Now())
	if r := h.subCheckout("u1", plan.ID); r.Status != http.StatusConflict || !strings.Contains(errMessage(r), rec.ID) {
		t.Errorf("with the subscription recorded: %d %s", r.Status, r.Raw)
	}
	// It ends (canceled at Stripe, its webhook applied): buying again works.
	h.stripe.CancelNow(rec.ID)
	h.deliver("customer.subscription.deleted", h.stripe.Subscription(rec.ID), time.Now())
	if r := h.subCheckout("u1", plan.ID); r.Status != http.StatusCreated {
		t.Errorf("after the subscription ended: %d %s", r.Status, r.Raw)
	}
	// What Stripe said of the completed session is recorded with the new one.
	var row model.SubscriptionCheckoutSession
	if err := h.db.NewSelect().Model(&row).Where("id = ?", freshID).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if row.Status != model.CheckoutComplete || row.SubscriptionID == nil || *row.SubscriptionID != rec.ID || row.CompletedAt == nil {
		t.Errorf("completed session's row: %+v", row)
	}
	if v := testenv.Metric(t, h.reg, "paystream_api_subscription_checkouts_total", map[string]string{"result": "reused"}); v != 1 {
		t.Errorf("reused = %v", v)
	}
}

// The Idempotency-Key replays its session whatever happened since, and
// names one checkout: not another customer's, plan's, or a purchase's.
func TestSubscriptionCheckoutIdempotencyKey(t *testing.T) {
	h := newHarness(t, nil)
	plan, other := h.plan("creator_1", 900, 0), h.plan("", 5000, 0)
	a := h.subCheckout("u1", plan.ID, "Idempotency-Key", "k-1")
	b := h.subCheckout("u1", plan.ID, "Idempotency-Key", "k-1")
	if a.Status != http.StatusCreated || b.Status != http.StatusCreated || a.Body["id"] != b.Body["id"] {
		t.Fatalf("replay: %d %s / %d %s", a.Status, a.Raw, b.Status, b.Raw)
	}
	if n := len(h.stripe.Calls()); n != 1 {
		t.Errorf("stripe calls = %d, want 1", n)
	}
	// The replay holds after the plan was archived and a subscription exists.
	if _, err := h.db.NewUpdate().Model((*model.SubscriptionPlan)(nil)).Set("archived_at = now()").
		Where("id = ?", plan.ID).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.subscribe("sub_k1", "u1", plan, model.SubscriptionActive, time.Now())
	if c := h.subCheckout("u1", plan.ID, "Idempotency-Key", "k-1"); c.Status != http.StatusCreated || c.Body["id"] != a.Body["id"] {
		t.Errorf("replay after archive and subscription: %d %s", c.Status, c.Raw)
	}
	if r := h.subCheckout("u9", plan.ID, "Idempotency-Key", "k-1"); r.Status != http.StatusBadRequest || r.errCode() != api.CodeIdempotencyReused {
		t.Errorf("same key, other customer: %d %s", r.Status, r.Raw)
	}
	if r := h.subCheckout("u1", other.ID, "Idempotency-Key", "k-1"); r.Status != http.StatusBadRequest || r.errCode() != api.CodeIdempotencyReused {
		t.Errorf("same key, other plan: %d %s", r.Status, r.Raw)
	}
	// One key, one checkout, across both kinds.
	if r := h.checkout("u1", h.paid, "Idempotency-Key", "p-1"); r.Status != http.StatusCreated {
		t.Fatalf("purchase: %d %s", r.Status, r.Raw)
	}
	if r := h.subCheckout("u1", other.ID, "Idempotency-Key", "p-1"); r.Status != http.StatusBadRequest || r.errCode() != api.CodeIdempotencyReused {
		t.Errorf("a purchase's key for a membership: %d %s", r.Status, r.Raw)
	}
	if r := h.checkout("u7", h.paid, "Idempotency-Key", "k-1"); r.Status != http.StatusBadRequest || r.errCode() != api.CodeIdempotencyReused {
		t.Errorf("a membership's key for a purchase: %d %s", r.Status, r.Raw)
	}
	if v := testenv.Metric(t, h.reg, "paystream_api_subscription_checkouts_total", map[string]string{"result": "replayed"}); v != 2 {
		t.Errorf("replayed = %v, want 2", v)
	}
}

func TestSubscriptionCheckoutRefusals(t *testing.T) {
	h := newHarness(t, nil)
	plan := h.plan("creator_1", 900, 0)
	archived := h.plan("creator_1", 900, 0)
	if _, err := h.db.NewUpdate().Model((*model.SubscriptionPlan)(nil)).Set("archived_at = now()").
		Where("id = ?", archived.ID).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for status, customer := range map[string]string{
		model.SubscriptionActive: "active", model.SubscriptionTrialing: "trialing", model.SubscriptionPastDue: "past_due",
		model.SubscriptionCanceled: "canceled", model.SubscriptionIncompleteExpired: "expired", model.SubscriptionUnpaid: "unpaid",
	} {
		h.subscribe("sub_"+customer, customer, plan, status, now)
	}
	h.subscribe("sub_elsewhere", "elsewhere", h.plan("", 100, 0), model.SubscriptionActive, now)
	body := func(customer string, plan uuid.UUID) map[string]string {
		return map[string]string{"customer_id": customer, "plan_id": plan.String()}
	}
	tests := []struct {
		name   string
		body   any
		status int
		code   string
		fields []string
	}{
		{"unknown plan", body("u", uuid.New()), 404, api.CodeNotFound, nil},
		{"archived plan", body("u", archived.ID), 404, api.CodeNotFound, nil},
		{"active subscription", body("active", plan.ID), 409, api.CodeAlreadySubscribed, nil},
		{"trialing subscription", body("trialing", plan.ID), 409, api.CodeAlreadySubscribed, nil},
		{"past_due subscription", body("past_due", plan.ID), 409, api.CodeAlreadySubscribed, nil},
		{"canceled subscription may subscribe again", body("canceled", plan.ID), 201, "", nil},
		{"incomplete_expired may subscribe again", body("expired", plan.ID), 201, "", nil},
		{"unpaid may subscribe again", body("unpaid", plan.ID), 201, "", nil},
		{"a subscription to another plan does not count", body("elsewhere", plan.ID), 201, "", nil},
		{"fields missing", map[string]string{}, 400, api.CodeInvalidRequest, []string{"customer_id", "plan_id"}},
		{"plan id not a uuid", map[string]string{"customer_id": "a\u202eb", "plan_id": "p1"}, 400, api.CodeInvalidRequest, []string{"customer_id", "plan_id"}},
		{"a price is not the caller's", map[string]any{"customer_id": "u", "plan_id": plan.ID.String(), "price_cents": 1}, 400, api.CodeInvalidRequest, nil},
		{"not json", []byte("customer=u"), 400, api.CodeInvalidRequest, nil},
		{"redirect host not allowed", map[string]string{"customer_id": "u", "plan_id": plan.ID.String(),
			"success_url": "https://evil.example/ok", "cancel_url": "javascript:alert(1)"}, 400, api.CodeInvalidRequest, []string{"success_url", "cancel_url"}},
		{"allowed subdomain", map[string]string{"customer_id": "u2", "plan_id": plan.ID.String(),
			"success_url": "https://a.cdn.example/ok"}, 201, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.subscriptionSessions())
			r := h.call(http.MethodPost, "/v1/subscriptions/checkout", keyA, tt.body)
			if r.Status != tt.status || tt.code != "" && r.errCode() != tt.code {
				t.Fatalf("got %d %s, want %d %s", r.Status, r.Raw, tt.status, tt.code)
			}
			e, _ := r.Body["error"].(map[string]any)
			fields, _ := e["fields"].(map[string]any)
			for _, f := range tt.fields {
				if _, ok := fields[f]; !ok || !strings.Contains(errMessage(r), f) {
					t.Errorf("field %s not named: %s", f, r.Raw)
				}
			}
			if after := len(h.subscriptionSessions()); tt.status >= 400 && after != before {
				t.Errorf("a refused checkout wrote a session row")
			}
		})
	}
	if r := h.subCheckout("past_due", plan.ID); !strings.Contains(errMessage(r), "billing portal") {
		t.Errorf("past_due 409 does not say what to do: %s", r.Raw)
	}
}

func TestSubscriptionCheckoutStripeFailures(t *testing.T) {
	tests := []struct {
		name    string
		open    bool // an open session exists, so Stripe is asked about it first
		fail    []apitest.Failure
		status  int
		code    string
		op      string
		reason  string
		created bool
	}{
		{"create 5xx", false, []apitest.Failure{{Status: 500}}, 502, api.CodeStripeError, "subscription_checkout_create", "server_error", false},
		{"create rate limited", false, []apitest.Failure{{Status: 429}}, 503, api.CodeStripeUnavailable, "subscription_checkout_create", "rate_limited", false},
		{"create timeout", false, []apitest.Failure{{Hang: 5 * time.Second}}, 503, api.CodeStripeUnavailable, "subscription_checkout_create", "unreachable", false},
		{"retrieve of the open session fails", true, []apitest.Failure{{Status: 500}}, 502, api.CodeStripeError, "checkout_session_retrieve", "server_error", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *api.Config) { c.StripeHTTPClient = &http.Client{Timeout: 500 * time.Millisecond} })
			plan := h.plan("creator_1", 900, 0)
			if tt.open {
				if r := h.subCheckout("u1", plan.ID); r.Status != http.StatusCreated {
					t.Fatalf("setup: %d %s", r.Status, r.Raw)
				}
			}
			before := h.subscriptionSessions()
			h.stripe.FailNext(tt.fail...)
			r := h.subCheckout("u1", plan.ID)
			if r.Status != tt.status || r.errCode() != tt.code {
				t.Fatalf("got %d %s, want %d %s", r.Status, r.Raw, tt.status, tt.code)
			}
			if after := h.subscriptionSessions(); len(after) != len(before) {
				t.Errorf("a failed checkout changed the session rows: %d → %d", len(before), len(after))
			}
			if v := testenv.Metric(t, h.reg, "paystream_api_stripe_errors_total", map[string]string{"operation": tt.op, "reason": tt.reason}); v != 1 {
				t.Errorf("stripe errors{%s,%s} = %v, want 1", tt.op, tt.reason, v)
			}
		})
	}
}

// Concurrent checkouts of one customer and plan make one session.
func TestSubscriptionCheckoutConcurrentRequestsMakeOneSession(t *testing.T) {
	h := newHarness(t, nil)
	plan := h.plan("creator_1", 900, 0)
	const n = 8
	type answer struct {
		status int
		id     any
	}
	answers := make(chan answer, n)
	for range n {
		go func() {
			r := h.subCheckout("user_c", plan.ID, "Idempotency-Key", "same-key")
			answers <- answer{r.Status, r.Body["id"]}
		}()
	}
	var first any
	for range n {
		a := <-answers
		if a.status != http.StatusCreated {
			t.Errorf("status %d, want every request to get the one session (201, replayed)", a.status)
		}
		if first == nil {
			first = a.id
		}
		if a.id != first {
			t.Errorf("sessions %v and %v for one key", first, a.id)
		}
	}
	creates := 0
	for _, c := range h.stripe.Calls() {
		if c.Method == http.MethodPost {
			creates++
		}
	}
	if creates != 1 || len(h.subscriptionSessions()) != 1 {
		t.Errorf("stripe creates %d, rows %d; want 1, 1", creates, len(h.subscriptionSessions()))
	}
}
