package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/paystream/paystream/internal/subscription"
	"github.com/paystream/paystream/internal/text"
	"github.com/paystream/paystream/model"
)

// Subscription is one membership as the API shows it.
type Subscription struct {
	Object             string     `json:"object"` // "subscription"
	ID                 string     `json:"id"`
	CustomerID         string     `json:"customer_id"`
	Plan               Plan       `json:"plan"`
	Status             string     `json:"status"` // Stripe's
	CurrentPeriodStart time.Time  `json:"current_period_start"`
	CurrentPeriodEnd   time.Time  `json:"current_period_end"`
	CancelAtPeriodEnd  bool       `json:"cancel_at_period_end"`
	CancelAt           *time.Time `json:"cancel_at"`
	CanceledAt         *time.Time `json:"canceled_at"`
	EndedAt            *time.Time `json:"ended_at"`
	TrialEnd           *time.Time `json:"trial_end"`
	AccessUntil        *time.Time `json:"access_until"` // null: grants no access
	Active             bool       `json:"active"`       // access_until is after now
	CreatedAt          time.Time  `json:"created_at"`
	UpdatedAt          time.Time  `json:"updated_at"`
}

// Plan is the plan of a subscription.
type Plan struct {
	ID             string  `json:"id"`
	Name           string  `json:"name"`
	OrganizationID string  `json:"organization_id"`
	CreatorID      *string `json:"creator_id"` // null: the whole organization's content
	PriceCents     int64   `json:"price_cents"`
	Currency       string  `json:"currency"`
	Interval       string  `json:"interval"`
	IntervalCount  int     `json:"interval_count"`
	TrialDays      int     `json:"trial_days"`
	GraceDays      int     `json:"grace_days"`
	Archived       bool    `json:"archived"`
}

// SubscriptionList is one page of a customer's subscriptions, newest first.
type SubscriptionList struct {
	Object  string         `json:"object"` // "list"
	Data    []Subscription `json:"data"`
	HasMore bool           `json:"has_more"`
}

func subscriptionOut(s *model.Subscription, now time.Time) Subscription {
	out := Subscription{Object: "subscription", ID: s.ID, CustomerID: s.CustomerID, Status: s.Status,
		CurrentPeriodStart: s.CurrentPeriodStart.UTC(), CurrentPeriodEnd: s.CurrentPeriodEnd.UTC(),
		CancelAtPeriodEnd: s.CancelAtPeriodEnd, CancelAt: utcPtr(s.CancelAt), CanceledAt: utcPtr(s.CanceledAt),
		EndedAt: utcPtr(s.EndedAt), TrialEnd: utcPtr(s.TrialEnd), AccessUntil: utcPtr(s.AccessUntil),
		Active: subscription.Grants(s.AccessUntil, now), CreatedAt: s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC()}
	if p := s.Plan; p != nil {
		out.Plan = Plan{ID: p.ID.String(), Name: p.Name, OrganizationID: p.OrganizationID.String(), CreatorID: p.CreatorID,
			PriceCents: p.PriceCents, Currency: p.Currency, Interval: p.Interval, IntervalCount: p.IntervalCount,
			TrialDays: p.TrialDays, GraceDays: p.GraceDays, Archived: p.ArchivedAt != nil}
	}
	return out
}

// subscriptions serves GET /v1/customers/{customer}/subscriptions: newest
// first, Stripe-style cursor pagination (limit, starting_after, has_more),
// every status (ended ones too: the caller shows the history).
func (s *Server) subscriptions(w http.ResponseWriter, r *http.Request) {
	q := subscriptionPage{Customer: r.PathValue("customer")}
	fields := map[string]string{}
	if why := text.CustomerID(q.Customer); why != "" {
		fields["customer"] = why
	}
	_, q.Limit, q.StartingAfter = parsePage(r, fields)
	if q.StartingAfter != "" {
		if why := text.Problem(q.StartingAfter, maxStripeID); why != "" {
			fields["starting_after"] = why
		}
	}
	if len(fields) > 0 {
		s.fail(w, r, invalidFields("request", fields))
		return
	}
	subs, more, err := listSubscriptions(r.Context(), s.db, q)
	if errors.Is(err, errSubscriptionCursor) {
		s.fail(w, r, &Error{Code: CodeInvalidRequest, Message: "starting_after " + err.Error(),
			Fields: map[string]string{"starting_after": "is not a subscription of this customer"}})
		return
	}
	if err != nil {
		s.fail(w, r, dbFailure(err))
		return
	}
	now := s.cfg.Now()
	out := SubscriptionList{Object: "list", Data: make([]Subscription, len(subs)), HasMore: more}
	for i := range subs {
		out.Data[i] = subscriptionOut(&subs[i], now)
	}
	writeJSON(w, http.StatusOK, out)
}

// maxStripeID bounds an id of a Stripe object in a path or query (Stripe's
// are a few dozen characters).
const maxStripeID = 255

// cancelSubscription serves POST /v1/subscriptions/{id}/cancel: cancel at
// the period end, so the customer keeps what they paid for.
func (s *Server) cancelSubscription(w http.ResponseWriter, r *http.Request) {
	s.setCancelAtPeriodEnd(w, r, true)
}

// resumeSubscription serves POST /v1/subscriptions/{id}/resume: undo a
// cancellation at the period end that has not taken effect yet.
func (s *Server) resumeSubscription(w http.ResponseWriter, r *http.Request) {
	s.setCancelAtPeriodEnd(w, r, false)
}

// setCancelAtPeriodEnd sets the subscription's cancel_at_period_end at
// Stripe and answers Stripe's resulting state. The local row is written
// only by the processor, from the customer.subscription.updated webhook
// this change causes, under the ordering rule; until then the list and the
// access check show the state before the change. The answer's access_until
// is what that webhook will store: the same rule (subscription.ApplyFetched)
// on Stripe's answer with the plan's grace days.
func (s *Server) setCancelAtPeriodEnd(w http.ResponseWriter, r *http.Request, cancel bool) {
	id := r.PathValue("id")
	fields := map[string]string{}
	if why := text.Problem(id, maxStripeID); why != "" {
		fields["id"] = why
	}
	if why := queryProblem(r); why != "" {
		fields["query"] = why
	}
	if len(fields) > 0 {
		s.fail(w, r, invalidFields("request", fields))
		return
	}
	ctx := r.Context()
	row, err := subscriptionWithPlan(ctx, s.db, id)
	if err != nil {
		s.fail(w, r, dbFailure(err))
		return
	}
	if row == nil {
		s.fail(w, r, errorf(CodeNotFound, "subscription %s was not sold through paystream (or its first webhook has not arrived yet)", id))
		return
	}
	if endedStatuses[row.Status] {
		s.fail(w, r, subscriptionEnded(id, row.Status))
		return
	}
	var raw []byte
	err = s.callStripe(opSubUpdate, func() (err error) {
		raw, err = s.billing.SetCancelAtPeriodEnd(ctx, id, cancel)
		return err
	})
	if err != nil {
		s.fail(w, r, s.endedAtStripe(r, id, err))
		return
	}
	out, err := stripeStateOut(row, raw, s.cfg.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// endedAtStripe turns Stripe's refusal of an update into 409 when the
// subscription ended at Stripe before its webhook reached the processor
// (Stripe refuses to change a canceled subscription); any other failure
// stays as it is.
func (s *Server) endedAtStripe(r *http.Request, id string, updateErr error) error {
	var se *stripe.Error
	if !errors.As(updateErr, &se) || se.HTTPStatusCode < 400 || se.HTTPStatusCode >= 500 || se.HTTPStatusCode == http.StatusTooManyRequests {
		return updateErr
	}
	var raw []byte
	if err := s.callStripe(opSubGet, func() (err error) {
		raw, err = s.billing.FetchSubscription(r.Context(), id)
		return err
	}); err != nil {
		return updateErr
	}
	if truth, err := subscription.DecodeSubscription(raw); err == nil && endedStatuses[truth.Status] {
		return subscriptionEnded(id, truth.Status)
	}
	return updateErr
}

func subscriptionEnded(id, status string) *Error {
	return errorf(CodeSubscriptionEnded, "subscription %s is %s: it ended and cannot be changed; start a new checkout", id, status)
}

// stripeStateOut is the local row with Stripe's answer applied: what the
// row will hold once the webhook of the change is applied. An answer that
// is a subscription but cannot be applied (a status paystream does not
// know, no period: the processor refetches those later) still says what
// the change did, so the row is shown with Stripe's cancellation fields.
func stripeStateOut(row *model.Subscription, raw []byte, now time.Time) (Subscription, error) {
	truth, err := subscription.DecodeSubscription(raw)
	if err == nil && truth.ID != row.ID {
		err = errors.New("stripe answered subscription " + truth.ID)
	}
	if err != nil {
		return Subscription{}, wrapErr(err, CodeStripeError, "Stripe's answer for subscription "+row.ID+" is not that subscription; retry later")
	}
	out := subscriptionOut(row, now)
	out.CancelAtPeriodEnd = truth.CancelAtPeriodEnd
	out.CancelAt, out.CanceledAt = timePtr(truth.CancelAt), timePtr(truth.CanceledAt)
	st, err := subscription.ApplyFetched(subscription.State{Exists: true, GraceDays: row.Plan.GraceDays}, *truth, subscription.Observation{})
	if err != nil {
		return out, nil
	}
	out.Status, out.CurrentPeriodStart, out.CurrentPeriodEnd = st.Status, st.PeriodStart, st.PeriodEnd
	out.EndedAt, out.TrialEnd = timePtr(st.EndedAt), timePtr(st.TrialEnd)
	out.AccessUntil = timePtr(st.AccessUntil)
	out.Active = subscription.Grants(out.AccessUntil, now)
	return out, nil
}

// timePtr is t in UTC, nil when zero (absent).
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
