package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/payout/stripefake"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// connectStripe is the stateful Stripe fake behind a recorder of the
// Account Link requests, so a test sees the URLs the API sent.
type connectStripe struct {
	fake  *stripefake.Server
	url   string
	mu    sync.Mutex
	links []url.Values
}

func newConnectStripe(t *testing.T) *connectStripe {
	t.Helper()
	c := &connectStripe{fake: stripefake.New(t)}
	target, err := url.Parse(c.fake.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/account_links" {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			if f, err := url.ParseQuery(string(b)); err == nil {
				c.mu.Lock()
				c.links = append(c.links, f)
				c.mu.Unlock()
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.url = srv.URL
	return c
}

func (c *connectStripe) lastLink(t *testing.T) url.Values {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.links) == 0 {
		t.Fatal("no Account Link was requested")
	}
	return c.links[len(c.links)-1]
}

// newConnectHarness is an API whose Stripe is the Connect fake.
func newConnectHarness(t *testing.T) (*harness, *connectStripe) {
	t.Helper()
	cs := newConnectStripe(t)
	h := newHarness(t, func(c *api.Config) {
		c.StripeSecretKey, c.StripeAPIBase = stripefake.Key, cs.url
		c.Onboarding.RefreshURL, c.Onboarding.ReturnURL = "https://shop.example/payouts/refresh", "https://shop.example/payouts/done"
		c.RateLimit = 0
	})
	return h, cs
}

// Onboarding creates the payee's Express account once and answers a new
// Account Link each time, to the configured URLs or the caller's on the
// allow-list.
func TestPayeeOnboarding(t *testing.T) {
	h, cs := newConnectHarness(t)
	r := h.call(http.MethodPost, "/v1/payees/creator/creator_1/onboarding", keyA, nil)
	acct, _ := r.Body["stripe_account_id"].(string)
	if r.Status != http.StatusOK || r.Body["object"] != "account_link" || !strings.HasPrefix(acct, "acct_") ||
		!strings.HasPrefix(r.Body["url"].(string), "https://") || r.Body["expires_at"] == nil {
		t.Fatalf("onboarding: %d %s", r.Status, r.Raw)
	}
	if l := cs.lastLink(t); l.Get("account") != acct || l.Get("refresh_url") != "https://shop.example/payouts/refresh" ||
		l.Get("return_url") != "https://shop.example/payouts/done" || l.Get("type") != "account_onboarding" {
		t.Errorf("account link request %v", l)
	}
	var p model.Payee
	if err := h.db.NewSelect().Model(&p).Where("kind = 'creator' AND id = 'creator_1'").Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p.StripeAccountID == nil || *p.StripeAccountID != acct {
		t.Fatalf("payee row %+v", p)
	}
	// Again, with the caller's URLs: the same account, a new link.
	again := h.call(http.MethodPost, "/v1/payees/creator/creator_1/onboarding", keyB,
		map[string]string{"refresh_url": "https://a.cdn.example/again", "return_url": "https://shop.example/back"})
	if again.Status != http.StatusOK || again.Body["stripe_account_id"] != acct {
		t.Fatalf("second onboarding: %d %s", again.Status, again.Raw)
	}
	if l := cs.lastLink(t); l.Get("refresh_url") != "https://a.cdn.example/again" || l.Get("return_url") != "https://shop.example/back" {
		t.Errorf("account link request %v", l)
	}
	if n := len(cs.fake.Accounts()); n != 1 {
		t.Fatalf("%d accounts at Stripe, want 1", n)
	}
	// An organization's id is its uuid, answered canonical.
	org := strings.ToUpper(h.org.String())
	if r := h.call(http.MethodPost, "/v1/payees/organization/"+org+"/onboarding", keyA, nil); r.Status != http.StatusOK {
		t.Fatalf("organization onboarding: %d %s", r.Status, r.Raw)
	}
	if err := h.db.NewSelect().Model(&p).Where("kind = 'organization' AND id = ?", h.org.String()).Scan(context.Background()); err != nil {
		t.Fatalf("organization payee: %v", err)
	}
}

// Concurrent onboardings of one payee create one account; of different
// payees, one each.
func TestPayeeOnboardingConcurrentCallsCreateOneAccount(t *testing.T) {
	h, cs := newConnectHarness(t)
	const calls = 8
	accounts := make([]string, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Not h.call: it fails the test from a goroutine.
			req, _ := http.NewRequest(http.MethodPost, h.http.URL+"/v1/payees/creator/busy_creator/onboarding", nil)
			req.Header.Set("Authorization", "Bearer "+keyA)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusOK {
				t.Errorf("call %d: %d %s", i, res.StatusCode, b)
				return
			}
			if at := bytes.Index(b, []byte(`"stripe_account_id":"`)); at >= 0 {
				rest := b[at+len(`"stripe_account_id":"`):]
				accounts[i] = string(rest[:bytes.IndexByte(rest, '"')])
			}
		}()
	}
	wg.Wait()
	for i, a := range accounts {
		if a == "" || a != accounts[0] {
			t.Fatalf("call %d got account %q, call 0 %q", i, a, accounts[0])
		}
	}
	if n := len(cs.fake.Accounts()); n != 1 {
		t.Fatalf("%d concurrent calls created %d accounts, want 1", calls, n)
	}
	if r := h.call(http.MethodPost, "/v1/payees/creator/other_creator/onboarding", keyA, nil); r.Status != http.StatusOK ||
		r.Body["stripe_account_id"] == accounts[0] {
		t.Fatalf("another payee: %d %s", r.Status, r.Raw)
	}
	if n := len(cs.fake.Accounts()); n != 2 {
		t.Fatalf("%d accounts, want 2", n)
	}
}

// What cannot be onboarded is the caller's 400, naming the field; Stripe's
// failures are 502/503 and leave no account half-stored.
func TestPayeeOnboardingRefusals(t *testing.T) {
	h, cs := newConnectHarness(t)
	for _, tt := range []struct {
		path  string
		body  any
		field string
	}{
		{"/v1/payees/team/t1/onboarding", nil, "kind"},
		{"/v1/payees/organization/not-a-uuid/onboarding", nil, "id"},
		{"/v1/payees/creator/%20padded/onboarding", nil, "id"},
		{"/v1/payees/creator/nul%00byte/onboarding", nil, "id"},
		{"/v1/payees/creator/" + strings.Repeat("x", 256) + "/onboarding", nil, "id"},
		{"/v1/payees/creator/c1/onboarding", map[string]string{"refresh_url": "https://evil.example/phish"}, "refresh_url"},
		{"/v1/payees/creator/c1/onboarding", map[string]string{"return_url": "javascript:alert(1)"}, "return_url"},
		{"/v1/payees/creator/c1/onboarding?x=%zz", nil, "query"},
	} {
		r := h.call(http.MethodPost, tt.path, keyA, tt.body)
		fields, _ := r.Body["error"].(map[string]any)["fields"].(map[string]any)
		if r.Status != http.StatusBadRequest || r.errCode() != api.CodeInvalidRequest || fields[tt.field] == nil {
			t.Errorf("%s %v: %d %s, want 400 naming %s", tt.path, tt.body, r.Status, r.Raw, tt.field)
		}
	}
	if r := h.call(http.MethodPost, "/v1/payees/creator/c1/onboarding", keyA, []byte(`{"refresh_url":1}`)); r.Status != http.StatusBadRequest {
		t.Errorf("a body of the wrong shape: %d %s", r.Status, r.Raw)
	}
	if r := h.call(http.MethodPost, "/v1/payees/creator/c1/onboarding", "", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("no key: %d", r.Status)
	}
	if n := len(cs.fake.Accounts()); n != 0 || countRows(t, h, "payees") != 0 {
		t.Fatalf("refused requests made %d accounts, %d payees", n, countRows(t, h, "payees"))
	}

	// Stripe answering 500, then unreachable.
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"error":{"type":"api_error","message":"boom"}}`)
	}))
	t.Cleanup(broken.Close)
	h5 := newHarness(t, func(c *api.Config) { c.StripeAPIBase = broken.URL })
	if r := h5.call(http.MethodPost, "/v1/payees/creator/c1/onboarding", keyA, nil); r.Status != http.StatusBadGateway || r.errCode() != api.CodeStripeError {
		t.Errorf("Stripe 500: %d %s", r.Status, r.Raw)
	}
	if countRows(t, h5, "payees WHERE stripe_account_id IS NOT NULL") != 0 {
		t.Error("an account was stored though Stripe failed")
	}
	broken.Close()
	if r := h5.call(http.MethodPost, "/v1/payees/creator/c1/onboarding", keyA, nil); r.Status != http.StatusServiceUnavailable || r.errCode() != api.CodeStripeUnavailable {
		t.Errorf("Stripe unreachable: %d %s", r.Status, r.Raw)
	}
	for _, reason := range []string{"server_error", "unreachable"} {
		if v := testenv.Metric(t, h5.reg, "paystream_api_stripe_errors_total", map[string]string{"operation": "payee_onboarding", "reason": reason}); v != 1 {
			t.Errorf("onboarding Stripe errors {reason=%s} = %v, want 1", reason, v)
		}
	}
}

// countRows counts rows of a table, optionally with a WHERE clause in from.
func countRows(t *testing.T, h *harness, from string) int {
	t.Helper()
	var n int
	if err := h.db.QueryRowContext(context.Background(), "SELECT count(*) FROM "+from).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Onboarding through stripe-go against stripe-mock: Stripe's schema takes
// the account and the link the API asks for (the README walks this).
func TestPayeeOnboardingAgainstStripeMock(t *testing.T) {
	base := testenv.StripeMock(t)
	h := newHarness(t, func(c *api.Config) { c.StripeAPIBase, c.StripeSecretKey = base, "sk_test_123" })
	r := h.call(http.MethodPost, "/v1/payees/creator/creator_mock/onboarding", keyA, nil)
	acct, _ := r.Body["stripe_account_id"].(string)
	if r.Status != http.StatusOK || !strings.HasPrefix(acct, "acct_") || r.Body["url"] == "" {
		t.Fatalf("onboarding against stripe-mock: %d %s", r.Status, r.Raw)
	}
	if p := h.call(http.MethodGet, "/v1/payees/creator/creator_mock", keyA, nil); p.Status != http.StatusOK || p.Body["stripe_account_id"] != acct {
		t.Fatalf("payee after onboarding: %d %s", p.Status, p.Raw)
	}
}
