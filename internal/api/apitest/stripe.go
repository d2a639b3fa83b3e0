// Package apitest holds test helpers of the purchase API: a fake Stripe
// Checkout Sessions backend that checks what stripe-go sends and fails on
// demand.
package apitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Metadata keys the fake expects on the session and its payment intent (the
// metadata contract; duplicated here so the fake checks the wire, not the
// constants the code under test uses).
var metadataKeys = []string{"customerId", "contentId", "organizationId", "amountPaidCents", "currency"}

// Call is one recorded POST /v1/checkout/sessions.
type Call struct {
	IdempotencyKey string
	Form           map[string]string // form parameters, first value of each
	Answered       int               // status the fake answered
	SessionID      string            // the session answered, when 200
}

// Failure is what the fake does instead of creating a session.
type Failure struct {
	Status int           // answer this status with a Stripe error body (500, 503, 400, 429…)
	Hang   time.Duration // or wait this long before answering (a timeout on the client's side)
}

// Stripe is an httptest Stripe that serves POST /v1/checkout/sessions.
// It records every call, checks the form parameters against what paystream
// must send (a t.Error for each defect), honours Idempotency-Key like Stripe
// (a replay gets the first answer) and fails the next calls on demand.
type Stripe struct {
	t      testing.TB
	srv    *httptest.Server
	Key    string // the secret key it accepts
	Now    func() time.Time
	mu     sync.Mutex
	calls  []Call
	fail   []Failure
	byKey  map[string][]byte
	seq    int
	bodies map[string]map[string]any // session id → its JSON
}

// NewStripe starts the fake; it stops at cleanup.
func NewStripe(t testing.TB) *Stripe {
	t.Helper()
	s := &Stripe{t: t, Key: "sk_test_apitest", Now: time.Now, byKey: map[string][]byte{}, bodies: map[string]map[string]any{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the base URL to give stripe-go (STRIPE_API_BASE).
func (s *Stripe) URL() string { return s.srv.URL }

// FailNext makes the next len(f) calls fail as described, in order.
func (s *Stripe) FailNext(f ...Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = append(s.fail, f...)
}

// Calls returns the calls so far.
func (s *Stripe) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Session returns the JSON object of a created session (metadata included),
// as Stripe would put it into a checkout.session.* event.
func (s *Stripe) Session(id string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodies[id]
}

func (s *Stripe) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/checkout/sessions" {
		s.t.Errorf("fake stripe: unexpected %s %s", r.Method, r.URL.Path)
		stripeError(w, http.StatusNotFound, "invalid_request_error", "unrecognized request URL")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.Key {
		stripeError(w, http.StatusUnauthorized, "invalid_request_error", "invalid API key")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.t.Errorf("fake stripe: form: %v", err)
		stripeError(w, http.StatusBadRequest, "invalid_request_error", "bad form")
		return
	}
	call := Call{IdempotencyKey: r.Header.Get("Idempotency-Key"), Form: map[string]string{}}
	for k, v := range r.PostForm {
		call.Form[k] = v[0]
	}
	s.mu.Lock()
	var f *Failure
	if len(s.fail) > 0 {
		f = &s.fail[0]
		s.fail = s.fail[1:]
	}
	prev, replay := s.byKey[call.IdempotencyKey]
	s.mu.Unlock()

	record := func(status int, id string) {
		call.Answered, call.SessionID = status, id
		s.mu.Lock()
		s.calls = append(s.calls, call)
		s.mu.Unlock()
	}
	switch {
	case f != nil && f.Hang > 0:
		select {
		case <-time.After(f.Hang):
		case <-r.Context().Done():
		}
		record(0, "")
		return
	case f != nil:
		record(f.Status, "")
		if f.Status == http.StatusTooManyRequests {
			w.Header().Set("Stripe-Should-Retry", "false")
		}
		stripeError(w, f.Status, "api_error", "fake stripe failure on demand")
		return
	case replay:
		record(http.StatusOK, "")
		w.Header().Set("Idempotent-Replayed", "true")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(prev)
		return
	}
	if call.IdempotencyKey == "" {
		s.t.Errorf("fake stripe: POST /v1/checkout/sessions without Idempotency-Key")
	}
	s.check(call.Form)
	s.mu.Lock()
	s.seq++
	id := fmt.Sprintf("cs_test_fake%06d_%d", s.seq, time.Now().UnixNano()%1e6)
	s.mu.Unlock()
	amount, _ := strconv.ParseInt(call.Form["line_items[0][price_data][unit_amount]"], 10, 64)
	expires, _ := strconv.ParseInt(call.Form["expires_at"], 10, 64)
	md := map[string]any{}
	for _, k := range metadataKeys {
		md[k] = call.Form["metadata["+k+"]"]
	}
	obj := map[string]any{
		"id": id, "object": "checkout.session", "mode": "payment", "status": "open", "payment_status": "unpaid",
		"url": "https://checkout.stripe.test/c/pay/" + id, "expires_at": expires, "livemode": false,
		"amount_total": amount, "amount_subtotal": amount, "currency": call.Form["line_items[0][price_data][currency]"],
		"client_reference_id": call.Form["client_reference_id"], "metadata": md,
		"success_url": call.Form["success_url"], "cancel_url": call.Form["cancel_url"], "created": s.Now().Unix(),
	}
	body, _ := json.Marshal(obj)
	s.mu.Lock()
	s.byKey[call.IdempotencyKey] = body
	s.bodies[id] = obj
	s.mu.Unlock()
	record(http.StatusOK, id)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// check reports every defect of a create request.
func (s *Stripe) check(f map[string]string) {
	s.t.Helper()
	want := func(k, v string) {
		if f[k] != v {
			s.t.Errorf("fake stripe: %s = %q, want %q", k, f[k], v)
		}
	}
	want("mode", "payment")
	want("line_items[0][quantity]", "1")
	if f["line_items[0][price]"] != "" {
		s.t.Errorf("fake stripe: line item refers to a Stripe price; paystream must send the catalog price as price_data")
	}
	for _, k := range []string{"client_reference_id", "success_url", "cancel_url", "line_items[0][price_data][product_data][name]"} {
		if f[k] == "" {
			s.t.Errorf("fake stripe: %s missing", k)
		}
	}
	want("client_reference_id", f["metadata[customerId]"])
	want("line_items[0][price_data][unit_amount]", f["metadata[amountPaidCents]"])
	want("line_items[0][price_data][currency]", f["metadata[currency]"])
	for _, k := range metadataKeys {
		if f["metadata["+k+"]"] == "" {
			s.t.Errorf("fake stripe: metadata[%s] missing", k)
		}
		want("payment_intent_data[metadata]["+k+"]", f["metadata["+k+"]"])
	}
	exp, err := strconv.ParseInt(f["expires_at"], 10, 64)
	now := s.Now()
	if err != nil || exp < now.Add(30*time.Minute-time.Minute).Unix() || exp > now.Add(24*time.Hour).Unix() {
		s.t.Errorf("fake stripe: expires_at %q is not between 30 min and 24 h ahead of %s", f["expires_at"], now.UTC())
	}
	for k := range f {
		if !knownParam(k) {
			s.t.Errorf("fake stripe: unexpected parameter %s", k)
		}
	}
}

func knownParam(k string) bool {
	for _, p := range []string{"mode", "client_reference_id", "success_url", "cancel_url", "expires_at", "metadata[",
		"payment_intent_data[metadata][", "line_items[0][quantity]", "line_items[0][price_data]["} {
		if k == p || strings.HasSuffix(p, "[") && strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// stripeError writes Stripe's error body.
func stripeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_fake")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"type": typ, "message": msg}})
}
