package pipeline_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/config/processorconfig"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/internal/stripeclient"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/subscription"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

// subscriptionStripe is a fake Stripe API of subscriptions: GET
// /v1/subscriptions/{id} answers the present state it was given, as the
// processor's refetch (STRIPE_API_BASE) asks for it.
type subscriptionStripe struct {
	srv   *httptest.Server
	mu    sync.Mutex
	truth map[string]json.RawMessage
	calls int
}

func newSubscriptionStripe(t *testing.T) *subscriptionStripe {
	t.Helper()
	f := &subscriptionStripe{truth: map[string]json.RawMessage{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.calls++
		body, ok := f.truth[strings.TrimPrefix(r.URL.Path, "/v1/subscriptions/")]
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if !ok || r.Method != http.MethodGet {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such subscription"}}`))
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *subscriptionStripe) callCount() int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls }

// setFrom makes the data.object of the event body the present state of its
// subscription.
func (f *subscriptionStripe) setFrom(t *testing.T, body []byte) {
	t.Helper()
	var ev struct {
		Data struct {
			Object json.RawMessage `json:"object"`
		} `json:"data"`
	}
	var head struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(ev.Data.Object, &head); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.truth[head.ID] = ev.Data.Object
	f.mu.Unlock()
}

// seedPlan inserts a monthly plan of the catalog's creator and returns it.
func seedPlan(t *testing.T, s *stack) model.SubscriptionPlan {
	t.Helper()
	creator := creatorID
	p := model.SubscriptionPlan{ID: uuid.New(), OrganizationID: s.cat.org, CreatorID: &creator, Name: "e2e monthly",
		PriceCents: 1000, Currency: currency, Interval: model.IntervalMonth, IntervalCount: 1, GraceDays: 3}
	if _, err := s.db.NewInsert().Model(&p).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}

// A membership's life through the whole stack — edge, STRIPE_EVENTS, two
// processor instances, Postgres, the outbox relay to PURCHASES: bought,
// renewed, failing, recovering, canceled at the period end and deleted.
// Sent one event after the other it is applied without asking Stripe and
// announces each change once; sent all at once in a shuffled order (two
// instances apply them concurrently, out of order) it converges to the same
// end with Stripe's present state settling what the payloads cannot. Every
// invoice is split and posted to the ledger, and nothing is dead-lettered.
func TestMembershipLifecycleThroughTheStack(t *testing.T) {
	s := newStack(t)
	plan := seedPlan(t, s)
	stripe := newSubscriptionStripe(t)
	dom := processorconfig.Domain{
		Relay: outbox.RelayConfig{PollInterval: 20 * time.Millisecond, MaxBackoff: 250 * time.Millisecond},
		Subscription: subscription.Config{SweepInterval: time.Second, RefetchTimeout: 2 * time.Second,
			Stripe: stripeclient.Config{Key: "sk_test_e2e", APIBase: stripe.srv.URL, MaxNetworkRetries: 1}},
	}
	s.startProcessor(procOpts{domain: &dom})
	s.startProcessor(procOpts{domain: &dom})
	member := func(customer string) (string, []stripefixture.Step) {
		sub, steps, err := stripefixture.MembershipLifecycle(stripefixture.Membership{CustomerID: customer,
			PlanID: plan.ID.String(), OrganizationID: s.cat.org.String(), Amount: plan.PriceCents, Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return sub, steps
	}
	ended := func(sub string) {
		t.Helper()
		var row model.Subscription
		if err := s.db.NewSelect().Model(&row).Where("id = ?", sub).Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		if row.Status != model.SubscriptionCanceled || row.AccessUntil != nil || row.ExpiredAt == nil || row.CustomerID == "" {
			t.Fatalf("subscription %s: %+v; want canceled, no access, its end announced", sub, row)
		}
		var invs []model.SubscriptionInvoice
		if err := s.db.NewSelect().Model(&invs).Where("subscription_id = ?", sub).Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(invs) != 3 {
			t.Fatalf("subscription %s has %d invoices, want 3", sub, len(invs))
		}
		for _, inv := range invs {
			if inv.AmountPaidCents != 1000 || inv.PlatformFeeCents != 150 || inv.OrganizationFeeCents != 170 || inv.CreatorPayoutCents != 680 {
				t.Errorf("invoice %s split %d / %d / %d of %d, want 150 / 170 / 680 (the seeded agreements)", inv.ID,
					inv.PlatformFeeCents, inv.OrganizationFeeCents, inv.CreatorPayoutCents, inv.AmountPaidCents)
			}
		}
	}

	// One after the other, as Stripe usually sends them.
	sub, steps := member("user_member_1")
	for _, st := range steps {
		s.mustPost(st.Body)
		eventually(t, 15*time.Second, st.Type+" "+st.EventID+" applied", func() bool {
			return s.count("stripe_events", "event_id = ?", st.EventID) == 1
		})
	}
	s.waitSettled(30 * time.Second)
	ended(sub)
	if n := stripe.callCount(); n != 0 {
		t.Errorf("the in-order story asked Stripe %d times; its payloads decide", n)
	}
	want := map[string]uint64{"subscriptions.started": 1, "subscriptions.renewed": 2, "subscriptions.past_due": 1,
		"subscriptions.canceled": 1, "subscriptions.expired": 1}
	got := s.subjectCounts(streams.PurchasesStream, "subscriptions.>")
	for subj, n := range want {
		if got[subj] != n {
			t.Errorf("PURCHASES holds %d %s, want %d (all: %v)", got[subj], subj, n, got)
		}
	}
	if v := s.metric("paystream_subscription_renewals_total", map[string]string{"currency": currency, "outcome": "failed"}); v != 1 {
		t.Errorf("failed renewals counted %v, want 1", v)
	}

	// All at once, shuffled.
	sub2, steps2 := member("user_member_2")
	stripe.setFrom(t, steps2[len(steps2)-1].Body) // Stripe's present state: deleted
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 42))
	for _, i := range rng.Perm(len(steps2)) {
		s.mustPost(steps2[i].Body)
	}
	s.waitSettled(60 * time.Second)
	ended(sub2)

	if dl := s.dlq(); len(dl) != 0 {
		t.Fatalf("dead letters: %s", describeLetters(dl))
	}
	d, err := ledger.Verify(context.Background(), s.db)
	if err != nil || d != nil {
		t.Fatalf("ledger verify: %v, %v", d, err)
	}
	var posted int
	if err := s.db.NewRaw(`SELECT count(*) FROM ledger_transactions WHERE cause = 'invoice'`).Scan(context.Background(), &posted); err != nil || posted != 6 {
		t.Fatalf("%d invoice postings (%v), want 6", posted, err)
	}
}
