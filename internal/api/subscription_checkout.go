package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/subscription"
	"github.com/paystream/paystream/model"
)

// SubscriptionCheckoutRequest is the body of POST
// /v1/subscriptions/checkout. The price is never part of it: it comes from
// the plan.
type SubscriptionCheckoutRequest struct {
	CustomerID string `json:"customer_id"`
	PlanID     string `json:"plan_id"`
	SuccessURL string `json:"success_url,omitempty"`
	CancelURL  string `json:"cancel_url,omitempty"`
}

// SubscriptionCheckoutSession is a created (or reused) Checkout Session in
// subscription mode: send the customer to URL.
type SubscriptionCheckoutSession struct {
	Object        string    `json:"object"` // "checkout_session"
	Mode          string    `json:"mode"`   // "subscription"
	ID            string    `json:"id"`
	URL           string    `json:"url"`
	Status        string    `json:"status"` // open, complete, expired
	CustomerID    string    `json:"customer_id"`
	PlanID        string    `json:"plan_id"`
	AmountCents   int64     `json:"amount_cents"` // per interval
	Currency      string    `json:"currency"`
	Interval      string    `json:"interval"`
	IntervalCount int       `json:"interval_count"`
	TrialDays     int       `json:"trial_days"`
	ExpiresAt     time.Time `json:"expires_at"`
	CreatedAt     time.Time `json:"created_at"`
}

func subscriptionSessionOut(s *model.SubscriptionCheckoutSession) SubscriptionCheckoutSession {
	out := SubscriptionCheckoutSession{Object: "checkout_session", Mode: "subscription", ID: s.ID, Status: s.Status,
		CustomerID: s.CustomerID, PlanID: s.PlanID.String(), AmountCents: s.AmountCents, Currency: s.Currency,
		Interval: s.Interval, IntervalCount: s.IntervalCount, TrialDays: s.TrialDays,
		ExpiresAt: s.ExpiresAt.UTC(), CreatedAt: s.CreatedAt.UTC()}
	if s.URL != nil {
		out.URL = *s.URL
	}
	return out
}

// subscriptionCheckoutInput is a validated SubscriptionCheckoutRequest.
type subscriptionCheckoutInput struct {
	customer   string
	plan       uuid.UUID
	successURL string
	cancelURL  string
	key        string // Idempotency-Key, "" when the caller sent none
}

// parseSubscriptionCheckout decodes and validates the request; a 400 names
// every bad field.
func (s *Server) parseSubscriptionCheckout(r *http.Request) (subscriptionCheckoutInput, error) {
	var req SubscriptionCheckoutRequest
	if err := decodeBody(r, &req, "customer_id, plan_id and optional success_url, cancel_url", false); err != nil {
		return subscriptionCheckoutInput{}, err
	}
	fields := map[string]string{}
	in := subscriptionCheckoutInput{customer: req.CustomerID}
	in.successURL, in.cancelURL, in.key = s.checkoutCommon(r, fields, req.CustomerID, req.SuccessURL, req.CancelURL)
	var err error
	if in.plan, err = uuid.Parse(req.PlanID); err != nil {
		fields["plan_id"] = "must be a uuid"
	}
	if len(fields) > 0 {
		return subscriptionCheckoutInput{}, invalidFields("fields", fields)
	}
	return in, nil
}

// createSubscriptionCheckout serves POST /v1/subscriptions/checkout.
//
// In one transaction, under advisory locks of the Idempotency-Key and of
// the (customer, plan) pair: a replayed key returns its session (201); an
// unknown or archived plan is 404; a live subscription of the customer to
// the plan is 409; an open session of the customer for the plan that
// Stripe confirms is still open is returned (200); otherwise Stripe creates
// the session and it is recorded (201). When Stripe fails the transaction
// rolls back and nothing is written.
func (s *Server) createSubscriptionCheckout(w http.ResponseWriter, r *http.Request) {
	in, err := s.parseSubscriptionCheckout(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var (
		out    *model.SubscriptionCheckoutSession
		status int
		result string
	)
	if err := s.inTx(r.Context(), func(ctx context.Context, tx bun.Tx) (err error) {
		out, status, result, err = s.subscriptionCheckoutTx(ctx, tx, in)
		return err
	}); err != nil {
		s.fail(w, r, err)
		return
	}
	s.metrics.SubscriptionCheckouts.WithLabelValues(result).Inc()
	writeJSON(w, status, subscriptionSessionOut(out))
}

// subscriptionCheckoutTx is createSubscriptionCheckout's transaction.
func (s *Server) subscriptionCheckoutTx(ctx context.Context, tx bun.Tx, in subscriptionCheckoutInput) (*model.SubscriptionCheckoutSession, int, string, error) {
	// The key's lock first, then the pair's, in every request: two requests
	// with one key for different plans meet here instead of at Stripe.
	if in.key != "" {
		if err := lockName(ctx, tx, "idempotency:"+in.key); err != nil {
			return nil, 0, "", err
		}
	}
	if err := lockName(ctx, tx, "subscription-checkout:"+in.customer+":"+in.plan.String()); err != nil {
		return nil, 0, "", err
	}
	if in.key != "" {
		prev, err := s.replayedSubscriptionCheckout(ctx, tx, in)
		if err != nil || prev != nil {
			return prev, http.StatusCreated, "replayed", err
		}
	}
	plan, err := planOnSale(ctx, tx, in.plan)
	if err != nil {
		return nil, 0, "", err
	}
	if plan == nil {
		return nil, 0, "", errorf(CodeNotFound, "plan %s does not exist or is archived", in.plan)
	}
	live, err := liveSubscription(ctx, tx, in.customer, in.plan)
	if err != nil {
		return nil, 0, "", err
	}
	if live != nil {
		return nil, 0, "", alreadySubscribed(live)
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond) // Postgres' precision: a replay answers the same
	if open, err := s.reusableSubscriptionSession(ctx, tx, in, now); err != nil || open != nil {
		return open, http.StatusOK, "reused", err
	}

	stripeCustomer, err := stripeCustomerOf(ctx, tx, in.customer)
	if err != nil {
		return nil, 0, "", err
	}
	req := subscriptionCheckoutRequest{
		CustomerID: in.customer, PlanName: plan.Name, AmountCents: plan.PriceCents, Currency: plan.Currency,
		Interval: plan.Interval, IntervalCount: plan.IntervalCount, TrialDays: plan.TrialDays,
		StripeCustomerID: stripeCustomer, SuccessURL: in.successURL, CancelURL: in.cancelURL,
		ExpiresAt: now.Add(s.cfg.SessionTTL).Truncate(time.Second), IdempotencyKey: stripeSubscriptionKey(in.key),
		Metadata: map[string]string{
			subscription.MetaCustomerID:     in.customer,
			subscription.MetaPlanID:         plan.ID.String(),
			subscription.MetaOrganizationID: plan.OrganizationID.String(),
		},
	}
	var ss stripeSession
	if err := s.callStripe(opSubCheckout, func() (err error) {
		ss, err = s.billing.CreateSubscriptionCheckout(ctx, req)
		return err
	}); err != nil {
		return nil, 0, "", err
	}
	row := &model.SubscriptionCheckoutSession{
		ID: ss.ID, CustomerID: in.customer, PlanID: plan.ID, OrganizationID: plan.OrganizationID,
		AmountCents: plan.PriceCents, Currency: plan.Currency, Interval: plan.Interval, IntervalCount: plan.IntervalCount,
		TrialDays: plan.TrialDays, Status: model.CheckoutOpen, Livemode: ss.Livemode, ExpiresAt: ss.ExpiresAt,
		CreatedAt: now, UpdatedAt: now,
	}
	if stripeCustomer != "" {
		row.StripeCustomerID = &stripeCustomer
	}
	if ss.URL != "" {
		row.URL = &ss.URL
	}
	if in.key != "" {
		row.IdempotencyKey = &in.key
	}
	got, err := insertSubscriptionSession(ctx, tx, row)
	if err != nil {
		return nil, 0, "", err
	}
	return got, http.StatusCreated, "created", nil
}

// replayedSubscriptionCheckout returns the session created under in.key,
// whatever happened since; a key used for another customer or plan, or for
// a purchase checkout, is the caller's 400: one key names one checkout.
func (s *Server) replayedSubscriptionCheckout(ctx context.Context, tx bun.Tx, in subscriptionCheckoutInput) (*model.SubscriptionCheckoutSession, error) {
	prev, err := subscriptionSessionByKey(ctx, tx, in.key)
	if err != nil {
		return nil, err
	}
	if prev != nil && (prev.CustomerID != in.customer || prev.PlanID != in.plan) {
		return nil, errorf(CodeIdempotencyReused, "Idempotency-Key was used for another customer or plan; use a fresh key per checkout")
	}
	if prev != nil {
		return prev, nil
	}
	purchase, err := sessionByKey(ctx, tx, in.key)
	if err != nil {
		return nil, err
	}
	if purchase != nil {
		return nil, errorf(CodeIdempotencyReused, "Idempotency-Key was used for a purchase checkout; use a fresh key per checkout")
	}
	return nil, nil
}

// reusableSubscriptionSession returns the customer's open session for the
// plan when Stripe confirms it is still open, or nil. No webhook moves
// these rows, so Stripe is asked, and its answer recorded in the
// transaction that creates the next session: an expired session is set
// aside; a completed one whose subscription the processor has not
// recorded yet means the customer just subscribed (409, not a second
// subscription; the row stays open until then, so Stripe is asked again),
// and one whose subscription is recorded (and, past the live check, has
// ended) is set aside too.
func (s *Server) reusableSubscriptionSession(ctx context.Context, tx bun.Tx, in subscriptionCheckoutInput, now time.Time) (*model.SubscriptionCheckoutSession, error) {
	open, err := openSubscriptionSession(ctx, tx, in.customer, in.plan, now)
	if err != nil || open == nil {
		return nil, err
	}
	var st sessionState
	if err := s.callStripe(opCheckoutGet, func() (err error) {
		st, err = s.billing.CheckoutSessionState(ctx, open.ID)
		return err
	}); err != nil {
		return nil, err
	}
	switch st.Status {
	case model.CheckoutOpen:
		return open, nil
	case model.CheckoutComplete, model.CheckoutExpired:
		if err := closeSubscriptionSession(ctx, tx, open.ID, st, now); err != nil {
			return nil, err
		}
	default:
		return nil, nil // a status Stripe added later: not reusable, and not ours to record
	}
	if st.Status == model.CheckoutComplete && st.SubscriptionID != "" {
		known, err := subscriptionKnown(ctx, tx, st.SubscriptionID)
		if err != nil {
			return nil, err
		}
		if !known {
			return nil, errorf(CodeAlreadySubscribed, "checkout session %s of plan %s completed: subscription %s is being recorded",
				open.ID, in.plan, st.SubscriptionID)
		}
	}
	return nil, nil
}

// alreadySubscribed is the 409 of a checkout for a plan the customer holds
// a live subscription to, saying what to do instead.
func alreadySubscribed(live *model.Subscription) *Error {
	e := errorf(CodeAlreadySubscribed, "customer already has subscription %s to plan %s (%s)", live.ID, live.PlanID, live.Status)
	switch {
	case live.Status == model.SubscriptionPastDue:
		e.Message += "; update the payment method through a billing portal session"
	case live.CancelAtPeriodEnd:
		e.Message += "; it is set to cancel at the period end: resume it instead"
	}
	return e
}

// stripeSubscriptionKey is the Idempotency-Key sent to Stripe. The
// caller's key is hashed under a prefix of this route: Stripe refuses a key
// it saw with other parameters, and the purchase checkout sends callers'
// keys as they are. The same caller key gives the same Stripe key, so a
// retry after a lost answer gets Stripe's first session back. Without a
// caller key a fresh one still makes stripe-go's own retries idempotent.
func stripeSubscriptionKey(callerKey string) string {
	if callerKey == "" {
		return "paystream-" + uuid.NewString()
	}
	sum := sha256.Sum256([]byte(callerKey))
	return "paystream-subscription-checkout-" + hex.EncodeToString(sum[:])
}
