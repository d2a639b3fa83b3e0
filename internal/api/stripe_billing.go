package api

import (
	"context"
	"errors"
	"time"

	"github.com/stripe/stripe-go/v76"
	portalsession "github.com/stripe/stripe-go/v76/billingportal/session"
	"github.com/stripe/stripe-go/v76/checkout/session"
	"github.com/stripe/stripe-go/v76/subscription"

	"github.com/paystream/paystream/internal/stripeclient"
)

// subscriptionCheckoutRequest is what the API asks Stripe to create for a
// membership: price, currency and interval come from the plan, never from
// the caller.
type subscriptionCheckoutRequest struct {
	CustomerID       string
	PlanName         string
	AmountCents      int64
	Currency         string
	Interval         string // month, year
	IntervalCount    int
	TrialDays        int    // 0: no trial
	StripeCustomerID string // the customer's Stripe customer; "" lets Checkout create one
	SuccessURL       string
	CancelURL        string
	ExpiresAt        time.Time
	IdempotencyKey   string
	Metadata         map[string]string // the metadata contract, on the session and subscription_data
}

// sessionState is what Stripe says of a Checkout Session now.
type sessionState struct {
	Status         string // open, complete, expired
	SubscriptionID string // the subscription a completed session created
}

// portalSession is a created Billing Portal session.
type portalSession struct {
	ID        string
	URL       string
	ReturnURL string
	Created   time.Time
}

// billingClient is what the subscription routes ask of Stripe;
// stripeBilling is the real one.
type billingClient interface {
	CreateSubscriptionCheckout(ctx context.Context, r subscriptionCheckoutRequest) (stripeSession, error)
	CheckoutSessionState(ctx context.Context, id string) (sessionState, error)
	// SetCancelAtPeriodEnd and FetchSubscription return Stripe's
	// subscription object as Stripe sent it (subscription.DecodeSubscription
	// reads either payload shape).
	SetCancelAtPeriodEnd(ctx context.Context, id string, cancel bool) ([]byte, error)
	FetchSubscription(ctx context.Context, id string) ([]byte, error)
	CreatePortalSession(ctx context.Context, stripeCustomer, returnURL string) (portalSession, error)
}

var _ billingClient = (*stripeBilling)(nil)

// stripeBilling calls Stripe with stripe-go on the API's stripeclient
// backend (the same key, base URL, retries and timeout as checkouts).
type stripeBilling struct {
	sessions session.Client
	subs     subscription.Client
	portal   portalsession.Client
}

func newStripeBilling(c stripeclient.Client) *stripeBilling {
	return &stripeBilling{
		sessions: session.Client{B: c.Backend, Key: c.Key},
		subs:     subscription.Client{B: c.Backend, Key: c.Key},
		portal:   portalsession.Client{B: c.Backend, Key: c.Key},
	}
}

// CreateSubscriptionCheckout implements billingClient. The price is inline
// (price_data with recurring): the plan row stays the one source of the
// price, a new price applies to the next checkout without syncing Stripe
// Price objects, and subscribers keep the price they signed up at, as
// Stripe keeps a subscription on its price.
func (b *stripeBilling) CreateSubscriptionCheckout(ctx context.Context, r subscriptionCheckoutRequest) (stripeSession, error) {
	params := sessionParams(ctx, stripe.CheckoutSessionModeSubscription, r.CustomerID, r.SuccessURL, r.CancelURL, r.ExpiresAt,
		r.Currency, r.AmountCents, r.PlanName, r.Metadata, r.IdempotencyKey)
	params.LineItems[0].PriceData.Recurring = &stripe.CheckoutSessionLineItemPriceDataRecurringParams{
		Interval:      stripe.String(r.Interval),
		IntervalCount: stripe.Int64(int64(r.IntervalCount)),
	}
	params.SubscriptionData = &stripe.CheckoutSessionSubscriptionDataParams{Metadata: r.Metadata}
	if r.TrialDays > 0 {
		params.SubscriptionData.TrialPeriodDays = stripe.Int64(int64(r.TrialDays))
	}
	if r.StripeCustomerID != "" {
		params.Customer = stripe.String(r.StripeCustomerID)
	}
	cs, err := b.sessions.New(params)
	if err != nil {
		return stripeSession{}, err
	}
	return sessionOf(cs, r.ExpiresAt)
}

// CheckoutSessionState implements billingClient.
func (b *stripeBilling) CheckoutSessionState(ctx context.Context, id string) (sessionState, error) {
	params := &stripe.CheckoutSessionParams{}
	params.Context = ctx
	cs, err := b.sessions.Get(id, params)
	if err != nil {
		return sessionState{}, err
	}
	st := sessionState{Status: string(cs.Status)}
	if cs.Subscription != nil {
		st.SubscriptionID = cs.Subscription.ID
	}
	return st, nil
}

// SetCancelAtPeriodEnd implements billingClient. Setting the flag is
// idempotent, so stripe-go's generated Idempotency-Key (reused on its
// retries) is enough.
func (b *stripeBilling) SetCancelAtPeriodEnd(ctx context.Context, id string, cancel bool) ([]byte, error) {
	params := &stripe.SubscriptionParams{CancelAtPeriodEnd: stripe.Bool(cancel)}
	params.Context = ctx
	sub, err := b.subs.Update(id, params)
	if err != nil {
		return nil, err
	}
	return rawObject(sub.LastResponse, "subscription")
}

// FetchSubscription implements billingClient.
func (b *stripeBilling) FetchSubscription(ctx context.Context, id string) ([]byte, error) {
	params := &stripe.SubscriptionParams{}
	params.Context = ctx
	sub, err := b.subs.Get(id, params)
	if err != nil {
		return nil, err
	}
	return rawObject(sub.LastResponse, "subscription")
}

// CreatePortalSession implements billingClient.
func (b *stripeBilling) CreatePortalSession(ctx context.Context, stripeCustomer, returnURL string) (portalSession, error) {
	params := &stripe.BillingPortalSessionParams{Customer: stripe.String(stripeCustomer), ReturnURL: stripe.String(returnURL)}
	params.Context = ctx
	ps, err := b.portal.New(params)
	if err != nil {
		return portalSession{}, err
	}
	if ps.ID == "" || ps.URL == "" {
		return portalSession{}, errors.New("stripe answered a billing portal session without an id or url")
	}
	out := portalSession{ID: ps.ID, URL: ps.URL, ReturnURL: ps.ReturnURL, Created: time.Unix(ps.Created, 0).UTC()}
	if out.ReturnURL == "" {
		out.ReturnURL = returnURL
	}
	return out, nil
}

// rawObject is the body Stripe answered, which stripe-go keeps.
func rawObject(r *stripe.APIResponse, what string) ([]byte, error) {
	if r == nil || len(r.RawJSON) == 0 {
		return nil, errors.New("stripe-go kept no body of the " + what)
	}
	return r.RawJSON, nil
}
