package api_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/api/apitest"
	"github.com/paystream/paystream/internal/subscription"
	"github.com/paystream/paystream/model"
)

// plan inserts a plan of h.org: creator "" is an organization plan.
func (h *harness) plan(creator string, price int64, trialDays int) *model.SubscriptionPlan {
	h.t.Helper()
	p := &model.SubscriptionPlan{ID: uuid.New(), OrganizationID: h.org, Name: "Plan " + creator, PriceCents: price,
		Currency: "usd", Interval: model.IntervalMonth, IntervalCount: 1, TrialDays: trialDays, GraceDays: 3}
	if creator != "" {
		p.CreatorID = &creator
	}
	h.insert(p)
	return p
}

// subscribe inserts a subscriptions row as the processor would write it
// from webhooks: status, the period around now, and access_until by the
// one access rule.
func (h *harness) subscribe(id, customer string, p *model.SubscriptionPlan, status string, created time.Time) *model.Subscription {
	h.t.Helper()
	start := created.UTC().Truncate(time.Second)
	st := subscription.State{Exists: true, GraceDays: p.GraceDays, Facts: subscription.Facts{
		Status: status, PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0), StartedAt: start}}
	if status == model.SubscriptionPastDue {
		st.PastDueSince = start
	}
	cus := "cus_" + customer
	h.stripe.AddCustomer(cus)
	s := &model.Subscription{ID: id, CustomerID: customer, PlanID: p.ID, StripeCustomerID: &cus, Status: status,
		CurrentPeriodStart: st.PeriodStart, CurrentPeriodEnd: st.PeriodEnd, StartedAt: &start,
		EventCreated: start, LastEventID: "evt_" + id, CreatedAt: created, UpdatedAt: created}
	if status == model.SubscriptionPastDue {
		s.PastDueSince = &start
	}
	if until := subscription.AccessUntil(st); !until.IsZero() {
		s.AccessUntil = &until
	}
	if status == model.SubscriptionCanceled {
		s.CanceledAt, s.EndedAt = &start, &start
	}
	h.insert(s)
	return s
}

// subCheckout posts a subscription checkout for customer and plan.
func (h *harness) subCheckout(customer string, plan uuid.UUID, hdr ...string) resp {
	h.t.Helper()
	return h.call(http.MethodPost, "/v1/subscriptions/checkout", keyA,
		map[string]string{"customer_id": customer, "plan_id": plan.String()}, hdr...)
}

// subscriptionRow loads a subscriptions row.
func (h *harness) subscriptionRow(id string) *model.Subscription {
	h.t.Helper()
	var s model.Subscription
	if err := h.db.NewSelect().Model(&s).Where("id = ?", id).Scan(context.Background()); err != nil {
		h.t.Fatalf("subscription %s: %v", id, err)
	}
	return &s
}

// subscriptionSessions returns the subscription_checkout_sessions rows.
func (h *harness) subscriptionSessions() []model.SubscriptionCheckoutSession {
	h.t.Helper()
	var rows []model.SubscriptionCheckoutSession
	if err := h.db.NewSelect().Model(&rows).Order("created_at").Scan(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	return rows
}

// fakeFetcher answers the processor's refetch from the fake Stripe.
type fakeFetcher struct{ s *apitest.Stripe }

func (f fakeFetcher) FetchSubscription(_ context.Context, id string) ([]byte, error) {
	if b := f.s.Subscription(id); b != nil {
		return b, nil
	}
	return nil, subscription.ErrNotInStripe
}

// eventSeq numbers the webhooks deliver makes up.
var eventSeq atomic.Int64

// deliver applies a customer.subscription.* event carrying object (a
// subscription as the fake Stripe holds it) through internal/subscription,
// the processor's code: what the webhook of a change does to the row.
// created is the event's time; each call is a later second than the last.
func (h *harness) deliver(typ string, object []byte, created time.Time) *model.Subscription {
	h.t.Helper()
	n := eventSeq.Add(1)
	ev, err := subscription.Decode(fmt.Sprintf("evt_api_%d", n), typ, created.Unix()+n, false, object)
	if err != nil {
		h.t.Fatalf("decode %s: %v", typ, err)
	}
	store, err := subscription.NewStore(fakeFetcher{h.stripe}, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	var out subscription.Outcome
	if err := h.db.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		out, err = store.Handle(ctx, tx, ev)
		return err
	}); err != nil {
		h.t.Fatalf("apply %s: %v", typ, err)
	}
	if out.After == nil {
		h.t.Fatalf("%s was not applied: %+v", typ, out)
	}
	return out.After
}

// errMessage is the message of an error body.
func errMessage(r resp) string {
	e, _ := r.Body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// mustTime parses an RFC 3339 field of a body.
func mustTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("time %v: %v", v, err)
	}
	return tm
}
