package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

func TestAccessCheck(t *testing.T) {
	h := newHarness(t, nil)
	owner := h.purchase("owner", model.PurchaseCompleted, time.Now())
	h.grant(&model.ContentAccess{UserID: "owner", AccessType: model.AccessPurchased, PurchaseID: &owner.ID})
	h.grant(&model.ContentAccess{UserID: "comp", AccessType: model.AccessComplimentary})
	past, future := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	h.grant(&model.ContentAccess{UserID: "lapsed", AccessType: model.AccessSubscription, ExpiresAt: &past})
	h.grant(&model.ContentAccess{UserID: "sub", AccessType: model.AccessSubscription, ExpiresAt: &future})
	refunded := h.purchase("refunded", model.PurchaseRefunded, time.Now())
	h.grant(&model.ContentAccess{UserID: "refunded", AccessType: model.AccessPurchased, PurchaseID: &refunded.ID, RevokedAt: &past})

	tests := []struct {
		customer string
		active   bool
		typ      any
		purchase *model.Purchase
	}{
		{"owner", true, "purchased", owner},
		{"comp", true, "complimentary", nil},
		{"sub", true, "subscription", nil},
		{"lapsed", false, "subscription", nil},
		{"refunded", false, "purchased", refunded},
		{"stranger", false, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.customer, func(t *testing.T) {
			r := h.call(http.MethodGet, "/v1/customers/"+tt.customer+"/access/"+h.paid.String(), keyB, nil)
			if r.Status != http.StatusOK || r.Body["active"] != tt.active || r.Body["access_type"] != tt.typ ||
				r.Body["customer_id"] != tt.customer || r.Body["content_id"] != h.paid.String() {
				t.Fatalf("got %d %s", r.Status, r.Raw)
			}
			p, _ := r.Body["purchase"].(map[string]any)
			switch {
			case tt.purchase == nil && p != nil:
				t.Errorf("purchase = %v, want null", p)
			case tt.purchase != nil && (p["id"] != tt.purchase.ID.String() || p["status"] != tt.purchase.Status):
				t.Errorf("purchase = %v, want %s %s", p, tt.purchase.ID, tt.purchase.Status)
			}
			if (tt.typ == nil) != (r.Body["since"] == nil) {
				t.Errorf("since = %v", r.Body["since"])
			}
		})
	}
	for _, path := range []string{"/v1/customers/u/access/not-a-uuid", "/v1/customers/%20u/access/" + h.paid.String()} {
		if r := h.call(http.MethodGet, path, keyA, nil); r.Status != http.StatusBadRequest || r.errCode() != api.CodeInvalidRequest {
			t.Errorf("%s: %d %s", path, r.Status, r.Raw)
		}
	}
}

func TestPurchaseHistoryPages(t *testing.T) {
	h := newHarness(t, nil)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ps []*model.Purchase // oldest first
	for i := range 5 {
		status := model.PurchaseCompleted
		if i == 2 {
			status = model.PurchaseRefunded
		}
		ps = append(ps, h.purchase("hist", status, base.Add(time.Duration(i)*time.Hour)))
	}
	// Two purchases in the same microsecond: the id breaks the tie.
	same := base.Add(10 * time.Hour)
	ps = append(ps, h.purchase("hist", model.PurchaseCompleted, same), h.purchase("hist", model.PurchaseCompleted, same))
	h.purchase("other", model.PurchaseCompleted, base)

	var got []string
	cursor := ""
	for page := 0; ; page++ {
		path := "/v1/customers/hist/purchases?limit=3"
		if cursor != "" {
			path += "&starting_after=" + cursor
		}
		r := h.call(http.MethodGet, path, keyA, nil)
		if r.Status != http.StatusOK || r.Body["object"] != "list" {
			t.Fatalf("page %d: %d %s", page, r.Status, r.Raw)
		}
		data := r.Body["data"].([]any)
		for _, d := range data {
			got = append(got, d.(map[string]any)["id"].(string))
		}
		more := r.Body["has_more"].(bool)
		if more != (len(got) < len(ps)) {
			t.Fatalf("page %d: has_more = %v after %d of %d", page, more, len(got), len(ps))
		}
		if !more {
			break
		}
		cursor = got[len(got)-1]
	}
	if len(got) != len(ps) {
		t.Fatalf("listed %d purchases, want %d", len(got), len(ps))
	}
	seen := map[string]bool{}
	for _, id := range got {
		seen[id] = true
	}
	if len(seen) != len(ps) {
		t.Errorf("pages repeated a purchase: %v", got)
	}
	// Newest first: the two of the same instant, then 4, 3, 2, 1, 0.
	for i, want := range []*model.Purchase{ps[4], ps[3], ps[2], ps[1], ps[0]} {
		if got[i+2] != want.ID.String() {
			t.Errorf("position %d = %s, want %s", i+2, got[i+2], want.ID)
		}
	}

	r := h.call(http.MethodGet, "/v1/customers/hist/purchases?status=refunded", keyA, nil)
	if data := r.Body["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != ps[2].ID.String() || r.Body["has_more"] != false {
		t.Errorf("status filter: %s", r.Raw)
	}
	for _, q := range []string{"limit=0", "limit=101", "limit=x", "status=shipped", "starting_after=x",
		"starting_after=" + uuid.NewString()} {
		if r := h.call(http.MethodGet, "/v1/customers/hist/purchases?"+q, keyA, nil); r.Status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", q, r.Status, r.Raw)
		}
	}
	if r := h.call(http.MethodGet, "/v1/customers/nobody/purchases", keyA, nil); r.Status != http.StatusOK ||
		len(r.Body["data"].([]any)) != 0 || r.Body["has_more"] != false {
		t.Errorf("no purchases: %s", r.Raw)
	}
}

func TestGetPurchase(t *testing.T) {
	h := newHarness(t, nil)
	p := h.purchase("u1", model.PurchaseCompleted, time.Now())
	lost, opened := "lost", time.Now()
	if _, err := h.db.NewUpdate().Model((*model.Purchase)(nil)).Where("id = ?", p.ID).
		Set("dispute_status = ?", lost).Set("disputed_at = ?", opened).Set("status = 'dispute_lost'").Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := h.call(http.MethodGet, "/v1/purchases/"+p.ID.String(), keyA, nil)
	if r.Status != http.StatusOK || r.Body["id"] != p.ID.String() || r.Body["status"] != "dispute_lost" || r.Body["amount_cents"] != 2999.0 {
		t.Fatalf("got %d %s", r.Status, r.Raw)
	}
	split := r.Body["split"].(map[string]any)
	if split["platform_fee_cents"] != 300.0 || split["creator_payout_cents"] != 2699.0 || split["platform_fee_bps"] != 1000.0 {
		t.Errorf("split = %v", split)
	}
	if d, _ := r.Body["dispute"].(map[string]any); d["status"] != "lost" || d["opened_at"] == nil {
		t.Errorf("dispute = %v", r.Body["dispute"])
	}
	if r := h.call(http.MethodGet, "/v1/purchases/"+uuid.NewString(), keyA, nil); r.Status != http.StatusNotFound || r.errCode() != api.CodeNotFound {
		t.Errorf("unknown: %d %s", r.Status, r.Raw)
	}
	if r := h.call(http.MethodGet, "/v1/purchases/nope", keyA, nil); r.Status != http.StatusBadRequest {
		t.Errorf("malformed: %d %s", r.Status, r.Raw)
	}
	if v := testenv.Metric(t, h.reg, "paystream_api_requests_total", map[string]string{"route": api.RoutePurchase, "code": "404"}); v != 1 {
		t.Errorf("requests{route=purchase,code=404} = %v", v)
	}
}

func TestAuthentication(t *testing.T) {
	h := newHarness(t, nil)
	path := "/v1/customers/u/access/" + h.paid.String()
	for _, tt := range []struct {
		name, header string
		status       int
	}{
		{"no header", "", 401},
		{"unknown key", "Bearer key_c_0123456789abcdef", 401},
		{"prefix of a key", "Bearer " + keyA[:len(keyA)-1], 401},
		{"basic scheme", "Basic " + keyA, 401},
		{"old key during rotation", "Bearer " + keyA, 200},
		{"new key", "Bearer " + keyB, 200},
		{"scheme case-insensitive", "bearer " + keyB, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := h.call(http.MethodGet, path, "", nil, "Authorization", tt.header)
			if r.Status != tt.status || tt.status == 401 && (r.errCode() != api.CodeUnauthorized || r.Header.Get("WWW-Authenticate") == "") {
				t.Errorf("got %d %s", r.Status, r.Raw)
			}
			if r.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
		})
	}
	for _, route := range []struct{ method, path string }{
		{http.MethodPost, "/v1/checkout/sessions"}, {http.MethodGet, "/v1/customers/u/purchases"}, {http.MethodGet, "/v1/purchases/" + uuid.NewString()},
	} {
		if r := h.call(route.method, route.path, "", nil); r.Status != http.StatusUnauthorized {
			t.Errorf("%s %s without a key: %d", route.method, route.path, r.Status)
		}
	}
	if r := h.call(http.MethodGet, "/v2/nothing", keyA, nil); r.Status != http.StatusNotFound || r.errCode() != api.CodeNotFound {
		t.Errorf("unknown route: %d %s", r.Status, r.Raw)
	}
	if r := h.call(http.MethodGet, path, keyA, nil, "X-Request-Id", "req-from-caller"); r.Header.Get("X-Request-Id") != "req-from-caller" {
		t.Errorf("X-Request-Id = %q, want the caller's", r.Header.Get("X-Request-Id"))
	}
	if logs := h.logs.String(); strings.Contains(logs, keyA[4:]) || strings.Contains(logs, keyB[4:]) {
		t.Errorf("a key reached the logs:\n%s", logs)
	}
}

func TestRateLimitPerKey(t *testing.T) {
	h := newHarness(t, func(c *api.Config) { c.RateLimit = 3 })
	path := "/v1/customers/u/access/" + h.paid.String()
	for i := range 3 {
		if r := h.call(http.MethodGet, path, keyA, nil); r.Status != http.StatusOK {
			t.Fatalf("request %d: %d", i, r.Status)
		}
	}
	r := h.call(http.MethodGet, path, keyA, nil)
	if r.Status != http.StatusTooManyRequests || r.errCode() != api.CodeRateLimited || r.Header.Get("Retry-After") == "" {
		t.Errorf("4th request: %d %s Retry-After=%q", r.Status, r.Raw, r.Header.Get("Retry-After"))
	}
	if r := h.call(http.MethodGet, path, keyB, nil); r.Status != http.StatusOK {
		t.Errorf("another key has its own bucket: %d", r.Status)
	}
}

func TestConfigValidation(t *testing.T) {
	good := api.Config{Keys: []string{keyA}, StripeSecretKey: "sk_test_x"}
	tests := []struct {
		name string
		edit func(*api.Config)
		want string
	}{
		{"no keys", func(c *api.Config) { c.Keys = nil }, "API_KEYS"},
		{"short key", func(c *api.Config) { c.Keys = []string{keyA, "tiny-secret"} }, "API_KEYS"},
		{"no stripe key", func(c *api.Config) { c.StripeSecretKey = "" }, "STRIPE_SECRET_KEY"},
		{"ttl too short", func(c *api.Config) { c.SessionTTL = time.Minute }, "CHECKOUT_SESSION_TTL"},
		{"bad success url", func(c *api.Config) { c.SuccessURL = "ftp://x/ok" }, "CHECKOUT_SUCCESS_URL"},
		{"same listener", func(c *api.Config) { c.Addr, c.AdminAddr = ":8081", ":8081" }, "ADMIN_ADDR"},
		{"bad stripe base", func(c *api.Config) { c.StripeAPIBase = "stripe" }, "STRIPE_API_BASE"},
	}
	bdb, _ := testenv.DB(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			_, err := api.New(bdb, c, newRegistry(), discard())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one naming %s", err, tt.want)
			}
			if err != nil && (strings.Contains(err.Error(), "tiny-secret") || strings.Contains(err.Error(), keyA)) {
				t.Errorf("error echoes a key: %v", err)
			}
		})
	}
	if _, err := api.New(bdb, good, newRegistry(), discard()); err != nil {
		t.Errorf("good config: %v", err)
	}
}
