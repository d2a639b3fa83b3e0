package subscription

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/stripeclient"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/model"
)

// httpStripe is a fake Stripe API answering GET /v1/subscriptions/{id} from
// a table of present states, reached through STRIPE_API_BASE as the real
// one would be.
type httpStripe struct {
	srv *httptest.Server

	mu       sync.Mutex
	truth    map[string][]byte
	status   int           // answer this status instead (0: answer normally)
	delay    time.Duration // wait this long before answering
	requests []*http.Request
}

const fakeKey = "sk_test_fake_refetch"

func newHTTPStripe(t *testing.T) *httpStripe {
	t.Helper()
	f := &httpStripe{truth: map[string][]byte{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *httpStripe) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Clone(context.Background()))
	status, delay := f.status, f.delay
	body, ok := f.truth[strings.TrimPrefix(r.URL.Path, "/v1/subscriptions/")]
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Header.Get("Authorization") != "Bearer "+fakeKey:
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided"}}`)
	case status != 0:
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"error":{"type":"api_error","message":"fake outage"}}`)
	case r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/v1/subscriptions/") || !ok:
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such subscription"}}`)
	default:
		_, _ = w.Write(body)
	}
}

func (f *httpStripe) set(id string, body []byte) { f.mu.Lock(); f.truth[id] = body; f.mu.Unlock() }

func (f *httpStripe) answer(status int, delay time.Duration) {
	f.mu.Lock()
	f.status, f.delay = status, delay
	f.mu.Unlock()
}

func (f *httpStripe) calls() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.requests...)
}

// fetcherFor is the production Fetcher on base with key, one stripe-go
// retry and timeout.
func fetcherFor(t *testing.T, base, key string, timeout time.Duration) Fetcher {
	t.Helper()
	f, err := NewFetcher(Config{Stripe: stripeclient.Config{Key: key, APIBase: base, MaxNetworkRetries: 1}, RefetchTimeout: timeout},
		NewMetrics(prometheus.NewRegistry()), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Two changes in one second: the second is a tie, settled by asking Stripe
// (the real Fetcher, on the fake STRIPE_API_BASE), whose answer wins over
// both payloads. While Stripe is down or slow the event is retried and
// nothing is written; a subscription Stripe does not know is dead-lettered.
func TestTieRefetchesFromStripe(t *testing.T) {
	forEachPath(t, func(t *testing.T, batch bool) {
		for _, shape := range shapes {
			t.Run(shape, func(t *testing.T) {
				bdb := catalogDB(t)
				stripe := newHTTPStripe(t)
				e := newFamEnv(t, bdb, fetcherFor(t, stripe.srv.URL, fakeKey, 2*time.Second), batch)
				at := t0.Add(10 * day)
				e.mustDeliver(rawEvt(t, shape, TypeSubscriptionCreated, "evt_c", t0, subObj(shape, p1, status(model.SubscriptionActive))))
				e.mustDeliver(rawEvt(t, shape, TypeSubscriptionUpdated, "evt_u1", at, subObj(shape, p1, cancelAtPeriodEnd(true))))
				tie := rawEvt(t, shape, TypeSubscriptionUpdated, "evt_u2", at, subObj(shape, p1, status(model.SubscriptionPastDue)))

				// Stripe down, then slow: retried, nothing written.
				stripe.answer(http.StatusServiceUnavailable, 0)
				r := e.deliver(tie)[0]
				if fault.CodeOf(r.Err) != fault.Unavailable || fault.ReasonOf(r.Err) != "stripe_unavailable" {
					t.Fatalf("Stripe down: %v, %v; want unavailable stripe_unavailable", r.Outcome, r.Err)
				}
				stripe.answer(0, 10*time.Second)
				start := time.Now()
				r = e.deliver(tie)[0]
				if fault.CodeOf(r.Err) != fault.Unavailable || time.Since(start) > 8*time.Second {
					t.Fatalf("Stripe slow: %v after %s; want unavailable within the refetch timeout", r.Err, time.Since(start))
				}
				if s := loadSub(t, bdb, fixSub); s.LastEventID != "evt_u1" || !s.CancelAtPeriodEnd || s.Status != model.SubscriptionActive {
					t.Fatalf("after failed refetches the row is %+v; want evt_u1's state", s)
				}
				// Stripe answers: its present state wins over both payloads.
				stripe.answer(0, 0)
				stripe.set(fixSub, subscriptionBody(t, shape, p1, status(model.SubscriptionPastDue), cancelAtPeriodEnd(false)))
				before := len(stripe.calls())
				e.mustDeliver(tie)
				s := loadSub(t, bdb, fixSub)
				if s.Status != model.SubscriptionPastDue || s.CancelAtPeriodEnd || s.LastEventID != "evt_u2" || !s.EventCreated.Equal(at) {
					t.Fatalf("after the refetch the row is %+v; want Stripe's past_due without cancel_at_period_end", s)
				}
				calls := stripe.calls()[before:]
				if len(calls) != 1 || calls[0].URL.Path != "/v1/subscriptions/"+fixSub || calls[0].Method != http.MethodGet ||
					calls[0].Header.Get("Stripe-Version") == "" {
					t.Fatalf("requests %d: %+v", len(calls), calls)
				}
				if kinds := outboxKinds(t, bdb, fixSub); kinds[len(kinds)-1] != EventPastDue {
					t.Errorf("events %v; want past_due last", kinds)
				}
				// A subscription Stripe does not know: dead letter.
				other := rawEvt(t, shape, TypeSubscriptionUpdated, "evt_o", at, subObj(shape, p1, subID("sub_unknown"),
					func(sub map[string]any) { sub["status"] = "brand_new_status" }))
				r = e.deliver(other)[0]
				if fault.ActionOf(r.Err) != fault.DeadLetter || fault.ReasonOf(r.Err) != "subscription_not_in_stripe" {
					t.Fatalf("unknown to Stripe: %v; want a dead letter subscription_not_in_stripe", r.Err)
				}
			})
		}
	})
}

// Without STRIPE_SECRET_KEY an event that needs Stripe is dead-lettered
// with a reason that says what to do; events that need no refetch apply.
func TestRefetchWithoutKeyIsDeadLettered(t *testing.T) {
	forEachPath(t, func(t *testing.T, batch bool) {
		bdb := catalogDB(t)
		e := newFamEnv(t, bdb, fetcherFor(t, "", "", time.Second), batch)
		e.mustDeliver(rawEvt(t, shapeOld, TypeSubscriptionCreated, "evt_c", t0, subObj(shapeOld, p1, status(model.SubscriptionActive))))
		tie := rawEvt(t, shapeOld, TypeSubscriptionUpdated, "evt_t", t0, subObj(shapeOld, p1, status(model.SubscriptionPastDue)))
		r := e.deliver(tie)[0]
		if fault.ActionOf(r.Err) != fault.DeadLetter || fault.ReasonOf(r.Err) != ReasonRefetchUnconfigured ||
			!strings.Contains(r.Err.Error(), "STRIPE_SECRET_KEY") {
			t.Fatalf("tie without a key: %v; want a dead letter %s naming STRIPE_SECRET_KEY", r.Err, ReasonRefetchUnconfigured)
		}
		if s := loadSub(t, bdb, fixSub); s.Status != model.SubscriptionActive {
			t.Fatalf("row %+v changed", s)
		}
	})
}

// A key Stripe refuses is retried (a rotation in progress heals), never
// applied.
func TestRefusedKeyIsRetried(t *testing.T) {
	stripe := newHTTPStripe(t)
	f := fetcherFor(t, stripe.srv.URL, "sk_test_wrong", time.Second)
	_, err := fetch(context.Background(), f, fixSub)
	if fault.CodeOf(err) != fault.Unavailable || fault.ReasonOf(err) != "stripe_unauthorized" {
		t.Fatalf("refused key: %v; want unavailable stripe_unauthorized", err)
	}
}

// Without a key, an invoice (or checkout) that overtook every event of its
// subscription waits for the subscription's own event instead, then
// applies: the dev mode's processor reorders a membership's first events
// among its workers.
func TestWithoutKeyAnInvoiceWaitsForItsSubscription(t *testing.T) {
	forEachPath(t, func(t *testing.T, batch bool) {
		bdb := catalogDB(t)
		e := newFamEnv(t, bdb, fetcherFor(t, "", "", time.Second), batch)
		paid := rawEvt(t, shapeOld, TypeInvoicePaid, "evt_p", t0.Add(2*time.Second), invoiceObj(shapeOld, "in_1", p1, 1000, t0.Add(2*time.Second), "one"))
		co := rawEvt(t, shapeOld, TypeCheckoutCompleted, "evt_co", t0.Add(3*time.Second), nil)
		for _, ev := range []stripeevent.Event{paid, co} {
			r := e.deliver(ev)[0]
			if fault.CodeOf(r.Err) != fault.Pending || fault.ReasonOf(r.Err) != "subscription_not_found" {
				t.Fatalf("%s before its subscription, no key: %v; want pending subscription_not_found", ev.Type, r.Err)
			}
		}
		e.mustDeliver(rawEvt(t, shapeOld, TypeSubscriptionCreated, "evt_c", t0, subObj(shapeOld, p1, status(model.SubscriptionActive))))
		e.mustDeliver(paid, co)
		if inv := loadInvoice(t, bdb, "in_1"); inv.AmountPaidCents != 1000 {
			t.Fatalf("invoice %+v", inv)
		}
	})
}
