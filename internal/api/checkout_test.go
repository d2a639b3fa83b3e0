package api_test

import (
	"fmt"
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

func TestCreateCheckoutSendsTheCatalogPriceAndMetadata(t *testing.T) {
	h := newHarness(t, nil)
	r := h.checkout("user_1", h.paid, "Idempotency-Key", "idem-1")
	if r.Status != http.StatusCreated {
		t.Fatalf("status %d, body %s", r.Status, r.Raw)
	}
	id, _ := r.Body["id"].(string)
	if !strings.HasPrefix(id, "cs_test_") || r.Body["url"] != "https://checkout.stripe.test/c/pay/"+id ||
		r.Body["status"] != "open" || r.Body["amount_cents"] != 2999.0 || r.Body["currency"] != "usd" ||
		r.Body["customer_id"] != "user_1" || r.Body["content_id"] != h.paid.String() {
		t.Errorf("body = %s", r.Raw)
	}
	exp, err := time.Parse(time.RFC3339, r.Body["expires_at"].(string))
	if err != nil || exp.Before(time.Now().Add(59*time.Minute)) || exp.After(time.Now().Add(61*time.Minute)) {
		t.Errorf("expires_at = %v, want about an hour ahead", r.Body["expires_at"])
	}
	calls := h.stripe.Calls()
	if len(calls) != 1 {
		t.Fatalf("stripe calls = %d, want 1", len(calls))
	}
	f := calls[0].Form
	if calls[0].IdempotencyKey != "idem-1" {
		t.Errorf("Idempotency-Key sent to Stripe = %q, want the caller's", calls[0].IdempotencyKey)
	}
	for k, want := range map[string]string{
		"line_items[0][price_data][unit_amount]": "2999", "line_items[0][price_data][currency]": "usd",
		"client_reference_id": "user_1", "metadata[contentId]": h.paid.String(), "metadata[organizationId]": h.org.String(),
		"payment_intent_data[metadata][customerId]": "user_1", "success_url": "https://shop.example/ok",
	} {
		if f[k] != want {
			t.Errorf("form %s = %q, want %q", k, f[k], want)
		}
	}
	rows := h.sessionRows("")
	if len(rows) != 1 || rows[0].ID != id || rows[0].Status != model.CheckoutOpen || rows[0].AmountCents != 2999 ||
		rows[0].OrganizationID != h.org || rows[0].IdempotencyKey == nil || *rows[0].IdempotencyKey != "idem-1" {
		t.Errorf("checkout_sessions = %+v", rows)
	}
	if v := testenv.Metric(t, h.reg, "paystream_api_checkouts_total", map[string]string{"result": "created"}); v != 1 {
		t.Errorf("checkouts created = %v", v)
	}
	if v := testenv.Metric(t, h.reg, "paystream_api_requests_total", map[string]string{"route": api.RouteCreateCheckout, "code": "201"}); v != 1 {
		t.Errorf("requests{route=create,code=201} = %v", v)
	}
}

func TestCreateCheckoutReusesTheOpenSession(t *testing.T) {
	h := newHarness(t, nil)
	first := h.checkout("user_1", h.paid)
	if first.Status != http.StatusCreated {
		t.Fatalf("first: %d %s", first.Status, first.Raw)
	}
	again := h.checkout("user_1", h.paid)
	if again.Status != http.StatusOK || again.Body["id"] != first.Body["id"] {
		t.Errorf("second checkout: %d %s, want 200 with session %v", again.Status, again.Raw, first.Body["id"])
	}
	other := h.checkout("user_2", h.paid)
	if other.Status != http.StatusCreated || other.Body["id"] == first.Body["id"] {
		t.Errorf("another customer: %d %s, want a new session", other.Status, other.Raw)
	}
	if n := len(h.stripe.Calls()); n != 2 {
		t.Errorf("stripe calls = %d, want 2", n)
	}
	// Once the session is expired (the processor marks it), the customer may buy again.
	if _, err := h.db.NewUpdate().Model((*model.CheckoutSession)(nil)).Set("status = 'expired', expired_at = now()").
		Where("id = ?", first.Body["id"]).Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	fresh := h.checkout("user_1", h.paid)
	if fresh.Status != http.StatusCreated || fresh.Body["id"] == first.Body["id"] {
		t.Errorf("after expiry: %d %s, want a new session", fresh.Status, fresh.Raw)
	}
}

func TestCreateCheckoutIdempotencyKey(t *testing.T) {
	h := newHarness(t, nil)
	a := h.checkout("user_1", h.paid, "Idempotency-Key", "k-1")
	b := h.checkout("user_1", h.paid, "Idempotency-Key", "k-1")
	if a.Status != http.StatusCreated || b.Status != http.StatusCreated || a.Body["id"] != b.Body["id"] {
		t.Errorf("replay: %d %s / %d %s, want the same 201", a.Status, a.Raw, b.Status, b.Raw)
	}
	if n := len(h.stripe.Calls()); n != 1 {
		t.Errorf("stripe calls = %d, want 1", n)
	}
	// The replay holds even after the purchase completed and access exists.
	h.grant(&model.ContentAccess{UserID: "user_1", AccessType: model.AccessComplimentary})
	if c := h.checkout("user_1", h.paid, "Idempotency-Key", "k-1"); c.Status != http.StatusCreated || c.Body["id"] != a.Body["id"] {
		t.Errorf("replay after access: %d %s", c.Status, c.Raw)
	}
	if c := h.checkout("user_9", h.paid, "Idempotency-Key", "k-1"); c.Status != http.StatusBadRequest || c.errCode() != api.CodeIdempotencyReused {
		t.Errorf("same key, other customer: %d %s", c.Status, c.Raw)
	}
	if c := h.checkout("user_9", h.paid, "Idempotency-Key", strings.Repeat("x", 256)); c.Status != http.StatusBadRequest {
		t.Errorf("over-long key: %d %s", c.Status, c.Raw)
	}
}

func TestCreateCheckoutRefusals(t *testing.T) {
	h := newHarness(t, nil)
	owner := h.purchase("owner", model.PurchaseCompleted, time.Now())
	h.grant(&model.ContentAccess{UserID: "owner", AccessType: model.AccessPurchased, PurchaseID: &owner.ID})
	h.grant(&model.ContentAccess{UserID: "comp", AccessType: model.AccessComplimentary})
	past := time.Now().Add(-time.Hour)
	h.grant(&model.ContentAccess{UserID: "lapsed", AccessType: model.AccessSubscription, ExpiresAt: &past})
	refunded := h.purchase("refunded", model.PurchaseRefunded, time.Now())
	h.grant(&model.ContentAccess{UserID: "refunded", AccessType: model.AccessPurchased, PurchaseID: &refunded.ID, RevokedAt: &past})

	tests := []struct {
		name   string
		body   any
		status int
		code   string
		fields []string
	}{
		{"unknown content", map[string]string{"customer_id": "u", "content_id": uuid.NewString()}, 404, api.CodeNotFound, nil},
		{"deleted content", map[string]string{"customer_id": "u", "content_id": h.deleted.String()}, 404, api.CodeNotFound, nil},
		{"free content", map[string]string{"customer_id": "u", "content_id": h.free.String()}, 400, api.CodeContentFree, nil},
		{"owned through a purchase", map[string]string{"customer_id": "owner", "content_id": h.paid.String()}, 409, api.CodeAlreadyOwned, nil},
		{"complimentary grant", map[string]string{"customer_id": "comp", "content_id": h.paid.String()}, 409, api.CodeAlreadyOwned, nil},
		{"expired grant may buy", map[string]string{"customer_id": "lapsed", "content_id": h.paid.String()}, 201, "", nil},
		{"refunded purchase may buy again", map[string]string{"customer_id": "refunded", "content_id": h.paid.String()}, 201, "", nil},
		{"fields missing", map[string]string{}, 400, api.CodeInvalidRequest, []string{"customer_id", "content_id"}},
		{"content id not a uuid", map[string]string{"customer_id": " u", "content_id": "c1"}, 400, api.CodeInvalidRequest, []string{"customer_id", "content_id"}},
		{"unknown field", map[string]any{"customer_id": "u", "content_id": h.paid.String(), "price": 1}, 400, api.CodeInvalidRequest, nil},
		{"not json", []byte("customer=u"), 400, api.CodeInvalidRequest, nil},
		{"redirect host not allowed", map[string]string{"customer_id": "u", "content_id": h.paid.String(),
			"success_url": "https://evil.example/ok", "cancel_url": "javascript:alert(1)"}, 400, api.CodeInvalidRequest, []string{"success_url", "cancel_url"}},
		{"allowed subdomain", map[string]string{"customer_id": "u2", "content_id": h.paid.String(),
			"success_url": "https://a.cdn.example/ok"}, 201, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.sessionRows(""))
			r := h.call(http.MethodPost, "/v1/checkout/sessions", keyA, tt.body)
			if r.Status != tt.status || tt.code != "" && r.errCode() != tt.code {
				t.Fatalf("got %d %s, want %d %s", r.Status, r.Raw, tt.status, tt.code)
			}
			e, _ := r.Body["error"].(map[string]any)
			fields, _ := e["fields"].(map[string]any)
			for _, f := range tt.fields {
				if _, ok := fields[f]; !ok || !strings.Contains(e["message"].(string), f) {
					t.Errorf("field %s not named: %s", f, r.Raw)
				}
			}
			if tt.status >= 400 {
				if e["message"] == "" {
					t.Errorf("error without a message: %s", r.Raw)
				}
				if after := len(h.sessionRows("")); after != before {
					t.Errorf("a refused checkout wrote a session row")
				}
			}
		})
	}
}

func TestCreateCheckoutStripeFailures(t *testing.T) {
	tests := []struct {
		name    string
		retries int
		fail    []apitest.Failure
		status  int
		code    string
		reason  string
		calls   int
	}{
		{"5xx", 0, []apitest.Failure{{Status: 500}}, 502, api.CodeStripeError, "server_error", 1},
		{"400 from Stripe", 0, []apitest.Failure{{Status: 400}}, 502, api.CodeStripeError, "rejected", 1},
		{"rate limited", 0, []apitest.Failure{{Status: 429}}, 503, api.CodeStripeUnavailable, "rate_limited", 1},
		{"timeout", 0, []apitest.Failure{{Hang: 5 * time.Second}}, 503, api.CodeStripeUnavailable, "unreachable", 1},
		{"retried 503 then created", 2, []apitest.Failure{{Status: 503}}, 201, "", "", 2},
		{"retried timeout then created", 1, []apitest.Failure{{Hang: 5 * time.Second}}, 201, "", "", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *api.Config) {
				c.StripeMaxNetworkRetries = tt.retries
				c.StripeHTTPClient = &http.Client{Timeout: 500 * time.Millisecond}
			})
			h.stripe.FailNext(tt.fail...)
			r := h.checkout("user_1", h.paid)
			if r.Status != tt.status || tt.code != "" && r.errCode() != tt.code {
				t.Fatalf("got %d %s, want %d %s", r.Status, r.Raw, tt.status, tt.code)
			}
			eventuallyCalls(t, h.stripe, tt.calls)
			calls := h.stripe.Calls()
			for _, c := range calls {
				if c.IdempotencyKey != calls[0].IdempotencyKey || c.IdempotencyKey == "" {
					t.Errorf("retries used Idempotency-Keys %q and %q; they must reuse one", calls[0].IdempotencyKey, c.IdempotencyKey)
				}
			}
			rows := h.sessionRows("")
			if tt.status >= 400 {
				if len(rows) != 0 {
					t.Errorf("failed checkout left %d session rows", len(rows))
				}
				if v := testenv.Metric(t, h.reg, "paystream_api_stripe_errors_total",
					map[string]string{"operation": "checkout_session_create", "reason": tt.reason}); v != 1 {
					t.Errorf("stripe errors = %v, want 1", v)
				}
				return
			}
			if len(rows) != 1 || rows[0].ID != r.Body["id"] {
				t.Errorf("rows = %+v", rows)
			}
		})
	}
}

// eventuallyCalls waits for a hung call to be recorded (the fake records it
// when the client gives up).
func eventuallyCalls(t *testing.T, s *apitest.Stripe, n int) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, fmt.Sprintf("%d stripe calls", n), func() bool { return len(s.Calls()) >= n })
	if got := len(s.Calls()); got != n {
		t.Errorf("stripe calls = %d, want %d", got, n)
	}
}

// Two concurrent checkouts of one customer and content make one session.
func TestCreateCheckoutConcurrentRequestsMakeOneSession(t *testing.T) {
	h := newHarness(t, nil)
	const n = 8
	codes := make(chan int, n)
	ids := make(chan any, n)
	for range n {
		go func() {
			r := h.checkout("user_c", h.paid)
			codes <- r.Status
			ids <- r.Body["id"]
		}()
	}
	created, first := 0, any(nil)
	for range n {
		c, id := <-codes, <-ids
		if c == http.StatusCreated {
			created++
		}
		if first == nil {
			first = id
		}
		if id != first {
			t.Errorf("sessions %v and %v for one customer and content", first, id)
		}
	}
	if created != 1 || len(h.stripe.Calls()) != 1 || len(h.sessionRows("")) != 1 {
		t.Errorf("created %d, stripe calls %d, rows %d; want 1, 1, 1", created, len(h.stripe.Calls()), len(h.sessionRows("")))
	}
}
