package apitest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// subscriptionMetadataKeys is the subscription metadata contract the fake
// expects on the session and on subscription_data.metadata (duplicated here
// so the fake checks the wire, not the constants of the code under test).
var subscriptionMetadataKeys = []string{"customerId", "planId", "organizationId"}

// createSubscriptionSession serves POST /v1/checkout/sessions with
// mode=subscription.
func (s *Stripe) createSubscriptionSession(w http.ResponseWriter, call *Call) (int, []byte) {
	f := call.Form
	s.checkSubscription(f)
	if c := f["customer"]; c != "" && !s.knownCustomer(c) {
		missing(w, "customer", c)
		return http.StatusNotFound, nil
	}
	id := s.newID("cs_test_fakesub")
	amount, _ := strconv.ParseInt(f["line_items[0][price_data][unit_amount]"], 10, 64)
	expires, _ := strconv.ParseInt(f["expires_at"], 10, 64)
	md, subMD := map[string]any{}, map[string]any{}
	for k, v := range f {
		if key, ok := strings.CutPrefix(k, "metadata["); ok {
			md[strings.TrimSuffix(key, "]")] = v
		}
		if key, ok := strings.CutPrefix(k, "subscription_data[metadata]["); ok {
			subMD[strings.TrimSuffix(key, "]")] = v
		}
	}
	var customer any
	if f["customer"] != "" {
		customer = f["customer"]
	}
	obj := map[string]any{
		"id": id, "object": "checkout.session", "mode": "subscription", "status": "open", "payment_status": "unpaid",
		"url": "https://checkout.stripe.test/c/pay/" + id, "expires_at": expires, "livemode": false,
		"amount_total": amount, "amount_subtotal": amount, "currency": f["line_items[0][price_data][currency]"],
		"client_reference_id": f["client_reference_id"], "metadata": md, "customer": customer, "subscription": nil,
		"success_url": f["success_url"], "cancel_url": f["cancel_url"], "created": s.Now().Unix(),
	}
	trial, _ := strconv.Atoi(f["subscription_data[trial_period_days]"])
	count, _ := strconv.Atoi(f["line_items[0][price_data][recurring][interval_count]"])
	data := map[string]any{"metadata": subMD, "trial_period_days": trial, "amount": amount,
		"currency": f["line_items[0][price_data][currency]"], "interval": f["line_items[0][price_data][recurring][interval]"],
		"interval_count": max(count, 1)}
	body, _ := json.Marshal(obj)
	s.mu.Lock()
	s.bodies[id] = obj
	s.subData[id] = data
	s.mu.Unlock()
	call.SessionID = id
	return http.StatusOK, body
}

// checkSubscription reports every defect of a subscription-mode create.
func (s *Stripe) checkSubscription(f map[string]string) {
	s.t.Helper()
	want := func(k, v string) { s.want(f, k, v) }
	want("line_items[0][quantity]", "1")
	if f["line_items[0][price]"] != "" {
		s.t.Errorf("fake stripe: line item refers to a Stripe price; paystream sends the plan's price as price_data")
	}
	for _, k := range []string{"client_reference_id", "success_url", "cancel_url", "line_items[0][price_data][product_data][name]",
		"line_items[0][price_data][currency]"} {
		if f[k] == "" {
			s.t.Errorf("fake stripe: %s missing", k)
		}
	}
	if a, err := strconv.ParseInt(f["line_items[0][price_data][unit_amount]"], 10, 64); err != nil || a <= 0 {
		s.t.Errorf("fake stripe: unit_amount %q is not a positive amount", f["line_items[0][price_data][unit_amount]"])
	}
	if iv := f["line_items[0][price_data][recurring][interval]"]; iv != "month" && iv != "year" {
		s.t.Errorf("fake stripe: recurring interval %q, want month or year", iv)
	}
	if n, err := strconv.Atoi(f["line_items[0][price_data][recurring][interval_count]"]); err != nil || n < 1 {
		s.t.Errorf("fake stripe: recurring interval_count %q", f["line_items[0][price_data][recurring][interval_count]"])
	}
	if d, ok := f["subscription_data[trial_period_days]"]; ok {
		if n, err := strconv.Atoi(d); err != nil || n < 1 {
			s.t.Errorf("fake stripe: subscription_data[trial_period_days] = %q; Stripe takes 1 or more (leave it out for none)", d)
		}
	}
	if c, ok := f["customer"]; ok && !strings.HasPrefix(c, "cus_") {
		s.t.Errorf("fake stripe: customer = %q", c)
	}
	want("client_reference_id", f["metadata[customerId]"])
	for _, k := range subscriptionMetadataKeys {
		if f["metadata["+k+"]"] == "" {
			s.t.Errorf("fake stripe: metadata[%s] missing", k)
		}
		want("subscription_data[metadata]["+k+"]", f["metadata["+k+"]"])
	}
	s.checkExpiry(f)
	for k := range f {
		if !knownPrefix(k, "mode", "client_reference_id", "success_url", "cancel_url", "expires_at", "customer", "metadata[",
			"subscription_data[metadata][", "subscription_data[trial_period_days]", "line_items[0][quantity]",
			"line_items[0][price_data][") {
			s.t.Errorf("fake stripe: unexpected parameter %s in a subscription checkout", k)
		}
	}
}

// CompleteSession completes subscription checkout session id as a customer
// paying it would: Stripe creates the subscription from the session's
// subscription_data (its metadata, trial and price) and, unless the session
// named one, a customer. It returns the subscription object, as Stripe puts
// it into customer.subscription.created. A session of another mode, or one
// not open, fails the test.
func (s *Stripe) CompleteSession(id string) []byte {
	s.t.Helper()
	now := s.Now().UTC().Truncate(time.Second)
	subID, cusID := s.newID("sub_fake"), s.newID("cus_fake")
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, data := s.bodies[id], s.subData[id]
	if sess == nil || data == nil || sess["status"] != "open" {
		s.t.Fatalf("fake stripe: no open subscription checkout session %s", id)
	}
	if c, ok := sess["customer"].(string); ok {
		cusID = c
	}
	s.customers[cusID] = true
	interval, count := data["interval"].(string), data["interval_count"].(int)
	end := now.AddDate(0, count, 0)
	if interval == "year" {
		end = now.AddDate(count, 0, 0)
	}
	status, trialStart, trialEnd := "active", any(nil), any(nil)
	if days := data["trial_period_days"].(int); days > 0 {
		end = now.AddDate(0, 0, days)
		status, trialStart, trialEnd = "trialing", now.Unix(), end.Unix()
	}
	sub := map[string]any{
		"id": subID, "object": "subscription", "customer": cusID, "status": status, "livemode": false,
		"cancel_at_period_end": false, "cancel_at": nil, "canceled_at": nil, "ended_at": nil,
		"trial_start": trialStart, "trial_end": trialEnd, "start_date": now.Unix(), "created": now.Unix(),
		"metadata": data["metadata"],
		"items": map[string]any{"object": "list", "data": []any{map[string]any{
			"id": "si_" + subID, "object": "subscription_item", "quantity": 1,
			"price": map[string]any{"object": "price", "unit_amount": data["amount"], "currency": data["currency"],
				"recurring": map[string]any{"interval": interval, "interval_count": count}},
		}}},
	}
	s.setPeriod(sub, now, end)
	s.subs[subID] = sub
	sess["status"], sess["payment_status"], sess["subscription"], sess["customer"] = "complete", "paid", subID, cusID
	body, _ := json.Marshal(sub)
	return body
}

// setPeriod puts the current period where the fake's API version has it.
func (s *Stripe) setPeriod(sub map[string]any, start, end time.Time) {
	item := sub["items"].(map[string]any)["data"].([]any)[0].(map[string]any)
	if s.PeriodOnItems {
		item["current_period_start"], item["current_period_end"] = start.Unix(), end.Unix()
		delete(sub, "current_period_start")
		delete(sub, "current_period_end")
		return
	}
	sub["current_period_start"], sub["current_period_end"] = start.Unix(), end.Unix()
}

// periodEnd is the subscription's current period end, in either shape.
func periodEnd(sub map[string]any) any {
	if e, ok := sub["current_period_end"]; ok {
		return e
	}
	return sub["items"].(map[string]any)["data"].([]any)[0].(map[string]any)["current_period_end"]
}

// ExpireSession expires an open checkout session, as Stripe does at its
// expires_at.
func (s *Stripe) ExpireSession(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess := s.bodies[id]; sess != nil && sess["status"] == "open" {
		sess["status"] = "expired"
	}
}

// Subscription returns the subscription object as Stripe would answer it
// now (nil when unknown).
func (s *Stripe) Subscription(id string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs[id] == nil {
		return nil
	}
	body, _ := json.Marshal(s.subs[id])
	return body
}

// CancelNow ends subscription id at Stripe (what the dashboard or the
// Billing Portal does), so the API's next update of it meets Stripe's
// refusal.
func (s *Stripe) CancelNow(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sub := s.subs[id]; sub != nil {
		now := s.Now().Unix()
		sub["status"], sub["canceled_at"], sub["ended_at"] = "canceled", now, now
	}
}

// AddCustomer makes Stripe know customer id (one the tests put into
// subscriptions directly).
func (s *Stripe) AddCustomer(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.customers[id] = true
}

func (s *Stripe) knownCustomer(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.customers[id]
}

// updateSubscription serves POST /v1/subscriptions/{id}: paystream only
// ever sets cancel_at_period_end.
func (s *Stripe) updateSubscription(w http.ResponseWriter, id string, call *Call) (int, []byte) {
	v, ok := call.Form["cancel_at_period_end"]
	if len(call.Form) != 1 || !ok || (v != "true" && v != "false") {
		s.t.Errorf("fake stripe: subscription update %v; paystream sends cancel_at_period_end=true|false only", call.Form)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.subs[id]
	if sub == nil {
		missing(w, "subscription", id)
		return http.StatusNotFound, nil
	}
	if sub["status"] == "canceled" || sub["status"] == "incomplete_expired" {
		stripeError(w, http.StatusBadRequest, "invalid_request_error",
			"A canceled subscription can only update its cancellation_details and metadata.")
		return http.StatusBadRequest, nil
	}
	if v == "true" {
		sub["cancel_at_period_end"], sub["cancel_at"], sub["canceled_at"] = true, periodEnd(sub), s.Now().Unix()
	} else {
		sub["cancel_at_period_end"], sub["cancel_at"], sub["canceled_at"] = false, nil, nil
	}
	body, _ := json.Marshal(sub)
	return http.StatusOK, body
}

// createPortalSession serves POST /v1/billing_portal/sessions.
func (s *Stripe) createPortalSession(w http.ResponseWriter, call *Call) (int, []byte) {
	f := call.Form
	for k := range f {
		if k != "customer" && k != "return_url" {
			s.t.Errorf("fake stripe: unexpected parameter %s in a billing portal session", k)
		}
	}
	if f["return_url"] == "" {
		s.t.Errorf("fake stripe: billing portal session without return_url")
	}
	if !s.knownCustomer(f["customer"]) {
		missing(w, "customer", f["customer"])
		return http.StatusNotFound, nil
	}
	id := s.newID("bps_fake")
	obj := map[string]any{"id": id, "object": "billing_portal.session", "customer": f["customer"],
		"return_url": f["return_url"], "url": "https://billing.stripe.test/p/session/" + id, "livemode": false,
		"created": s.Now().Unix()}
	body, _ := json.Marshal(obj)
	return http.StatusOK, body
}
