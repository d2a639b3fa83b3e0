// Package apitest holds test helpers of the purchase API: a stateful fake
// Stripe (Checkout Sessions in payment and subscription mode,
// subscriptions, Billing Portal sessions) that checks what stripe-go sends
// and fails on demand.
package apitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
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

// Call is one recorded request.
type Call struct {
	Method         string
	Path           string
	IdempotencyKey string
	Form           map[string]string // form parameters, first value of each
	Answered       int               // status the fake answered
	SessionID      string            // the checkout session created, when 200
}

// Failure is what the fake does instead of answering a request.
type Failure struct {
	Status int           // answer this status with a Stripe error body (500, 503, 400, 429…)
	Hang   time.Duration // or wait this long before answering (a timeout on the client's side)
}

// Stripe is an httptest Stripe. It serves Checkout Sessions (create in
// payment or subscription mode, retrieve), subscriptions (retrieve, update
// of cancel_at_period_end) and Billing Portal sessions (create), keeping
// their state like Stripe. It records every call, checks the form
// parameters against what paystream must send (a t.Error for each defect),
// honours Idempotency-Key like Stripe (a replay gets the first answer) and
// fails the next calls on demand.
type Stripe struct {
	t   testing.TB
	srv *httptest.Server
	Key string // the secret key it accepts
	Now func() time.Time
	// PeriodOnItems makes subscriptions carry their period on their items
	// only, as API 2025-03-31 and later do.
	PeriodOnItems bool
	mu            sync.Mutex
	calls         []Call
	fail          []Failure
	byKey         map[string][]byte
	seq           int
	bodies        map[string]map[string]any // session id → its JSON
	subData       map[string]map[string]any // session id → the subscription_data it was created with
	subs          map[string]map[string]any // subscription id → its JSON
	customers     map[string]bool
}

// NewStripe starts the fake; it stops at cleanup.
func NewStripe(t testing.TB) *Stripe {
	t.Helper()
	s := &Stripe{t: t, Key: "sk_test_apitest", Now: time.Now, byKey: map[string][]byte{}, bodies: map[string]map[string]any{},
		subData: map[string]map[string]any{}, subs: map[string]map[string]any{}, customers: map[string]bool{}}
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
	if r.Header.Get("Authorization") != "Bearer "+s.Key {
		stripeError(w, http.StatusUnauthorized, "invalid_request_error", "invalid API key")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.t.Errorf("fake stripe: form: %v", err)
		stripeError(w, http.StatusBadRequest, "invalid_request_error", "bad form")
		return
	}
	call := Call{Method: r.Method, Path: r.URL.Path, IdempotencyKey: r.Header.Get("Idempotency-Key"), Form: map[string]string{}}
	for k, v := range r.PostForm {
		call.Form[k] = v[0]
	}
	var handle func(http.ResponseWriter, *Call) (int, []byte)
	id := path.Base(r.URL.Path)
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/checkout/sessions":
		handle = s.createSession
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/checkout/sessions/"):
		handle = func(w http.ResponseWriter, c *Call) (int, []byte) {
			return s.object(w, s.bodies, id, "checkout.session")
		}
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/subscriptions/"):
		handle = func(w http.ResponseWriter, c *Call) (int, []byte) { return s.object(w, s.subs, id, "subscription") }
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/subscriptions/"):
		handle = func(w http.ResponseWriter, c *Call) (int, []byte) { return s.updateSubscription(w, id, c) }
	case r.Method == http.MethodPost && r.URL.Path == "/v1/billing_portal/sessions":
		handle = s.createPortalSession
	default:
		s.t.Errorf("fake stripe: unexpected %s %s", r.Method, r.URL.Path)
		stripeError(w, http.StatusNotFound, "invalid_request_error", "unrecognized request URL")
		return
	}
	s.mu.Lock()
	var f *Failure
	if len(s.fail) > 0 {
		f = &s.fail[0]
		s.fail = s.fail[1:]
	}
	prev, replay := s.byKey[call.IdempotencyKey]
	replay = replay && r.Method == http.MethodPost
	s.mu.Unlock()

	record := func(status int) {
		call.Answered = status
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
		record(0)
		return
	case f != nil:
		record(f.Status)
		if f.Status == http.StatusTooManyRequests {
			w.Header().Set("Stripe-Should-Retry", "false")
		}
		stripeError(w, f.Status, "api_error", "fake stripe failure on demand")
		return
	case replay:
		record(http.StatusOK)
		w.Header().Set("Idempotent-Replayed", "true")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(prev)
		return
	}
	if r.Method == http.MethodPost && call.IdempotencyKey == "" {
		s.t.Errorf("fake stripe: POST %s without Idempotency-Key", r.URL.Path)
	}
	status, body := handle(w, &call)
	if status == http.StatusOK && r.Method == http.MethodPost {
		s.mu.Lock()
		s.byKey[call.IdempotencyKey] = body
		s.mu.Unlock()
	}
	record(status)
	if status == http.StatusOK {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}
}

// createSession serves POST /v1/checkout/sessions in either mode.
func (s *Stripe) createSession(w http.ResponseWriter, call *Call) (int, []byte) {
	if call.Form["mode"] == "subscription" {
		return s.createSubscriptionSession(w, call)
	}
	s.check(call.Form)
	id := s.newID("cs_test_fake")
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
	s.bodies[id] = obj
	s.mu.Unlock()
	call.SessionID = id
	return http.StatusOK, body
}

// newID returns a fresh id with prefix.
func (s *Stripe) newID(prefix string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return fmt.Sprintf("%s%06d_%d", prefix, s.seq, time.Now().UnixNano()%1e6)
}

// object answers the stored object id of kind, or Stripe's 404.
func (s *Stripe) object(w http.ResponseWriter, store map[string]map[string]any, id, kind string) (int, []byte) {
	s.mu.Lock()
	obj, ok := store[id]
	var body []byte
	if ok {
		body, _ = json.Marshal(obj)
	}
	s.mu.Unlock()
	if !ok {
		missing(w, kind, id)
		return http.StatusNotFound, nil
	}
	return http.StatusOK, body
}

// missing writes Stripe's resource_missing error.
func missing(w http.ResponseWriter, kind, id string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"type": "invalid_request_error", "code": "resource_missing", "message": "No such " + kind + ": '" + id + "'"}})
}

// check reports every defect of a payment-mode create.
func (s *Stripe) check(f map[string]string) {
	s.t.Helper()
	want := func(k, v string) { s.want(f, k, v) }
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
	s.checkExpiry(f)
	for k := range f {
		if !knownPrefix(k, "mode", "client_reference_id", "success_url", "cancel_url", "expires_at", "metadata[",
			"payment_intent_data[metadata][", "line_items[0][quantity]", "line_items[0][price_data][") {
			s.t.Errorf("fake stripe: unexpected parameter %s", k)
		}
	}
}

// want reports a form parameter k that is not v.
func (s *Stripe) want(f map[string]string, k, v string) {
	s.t.Helper()
	if f[k] != v {
		s.t.Errorf("fake stripe: %s = %q, want %q", k, f[k], v)
	}
}

// checkExpiry reports an expires_at outside Stripe's 30 min to 24 h.
func (s *Stripe) checkExpiry(f map[string]string) {
	s.t.Helper()
	exp, err := strconv.ParseInt(f["expires_at"], 10, 64)
	now := s.Now()
	if err != nil || exp < now.Add(30*time.Minute-time.Minute).Unix() || exp > now.Add(24*time.Hour).Unix() {
		s.t.Errorf("fake stripe: expires_at %q is not between 30 min and 24 h ahead of %s", f["expires_at"], now.UTC())
	}
}

// knownPrefix reports whether parameter k is one of params, or under one
// of them that ends in "[".
func knownPrefix(k string, params ...string) bool {
	for _, p := range params {
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
