package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/checkout/session"

	"github.com/paystream/paystream/internal/stripeclient"
)

// checkoutRequest is what the API asks Stripe to create. Amount and
// currency come from the catalog, never from the caller.
type checkoutRequest struct {
	CustomerID     string
	ContentID      string
	OrganizationID string
	ProductName    string
	AmountCents    int64
	Currency       string
	SuccessURL     string
	CancelURL      string
	ExpiresAt      time.Time
	IdempotencyKey string
	Metadata       map[string]string // the metadata contract, on the session and its payment intent
}

// stripeSession is what the API keeps of Stripe's answer.
type stripeSession struct {
	ID        string
	URL       string
	ExpiresAt time.Time
	Livemode  bool
}

// checkoutCreator creates Checkout Sessions; stripeCheckouts is the real one.
type checkoutCreator interface {
	CreateCheckout(ctx context.Context, r checkoutRequest) (stripeSession, error)
}

var _ checkoutCreator = (*stripeCheckouts)(nil)

// stripeCheckouts creates sessions with stripe-go on the API's own
// stripeclient backend.
type stripeCheckouts struct {
	client session.Client
}

// newStripeCheckouts creates sessions on c. stripe-go reuses a request's
// Idempotency-Key on its retries, so a retried create never makes a second
// session.
func newStripeCheckouts(c stripeclient.Client) *stripeCheckouts {
	return &stripeCheckouts{client: session.Client{B: c.Backend, Key: c.Key}}
}

// CreateCheckout implements checkoutCreator.
func (s *stripeCheckouts) CreateCheckout(ctx context.Context, r checkoutRequest) (stripeSession, error) {
	params := sessionParams(ctx, stripe.CheckoutSessionModePayment, r.CustomerID, r.SuccessURL, r.CancelURL, r.ExpiresAt,
		r.Currency, r.AmountCents, r.ProductName, r.Metadata, r.IdempotencyKey)
	params.PaymentIntentData = &stripe.CheckoutSessionPaymentIntentDataParams{Metadata: r.Metadata}
	cs, err := s.client.New(params)
	if err != nil {
		return stripeSession{}, err
	}
	return sessionOf(cs, r.ExpiresAt)
}

// sessionParams is a Checkout Session create of one item at amount, the
// metadata on the session, under the Idempotency-Key key: what both kinds
// of checkout send; each adds its mode's own parameters.
func sessionParams(ctx context.Context, mode stripe.CheckoutSessionMode, customer, successURL, cancelURL string,
	expires time.Time, currency string, amount int64, name string, metadata map[string]string, key string) *stripe.CheckoutSessionParams {
	params := &stripe.CheckoutSessionParams{
		Mode:              stripe.String(string(mode)),
		ClientReferenceID: stripe.String(customer),
		SuccessURL:        stripe.String(successURL),
		CancelURL:         stripe.String(cancelURL),
		ExpiresAt:         stripe.Int64(expires.Unix()),
		LineItems: []*stripe.CheckoutSessionLineItemParams{{
			Quantity: stripe.Int64(1),
			PriceData: &stripe.CheckoutSessionLineItemPriceDataParams{
				Currency:    stripe.String(currency),
				UnitAmount:  stripe.Int64(amount),
				ProductData: &stripe.CheckoutSessionLineItemPriceDataProductDataParams{Name: stripe.String(name)},
			},
		}},
	}
	params.Context = ctx
	for k, v := range metadata {
		params.AddMetadata(k, v)
	}
	params.SetIdempotencyKey(key)
	return params
}

// sessionOf is what the API keeps of a created session; requested is the
// expires_at it asked for, kept when Stripe's answer omits it.
func sessionOf(cs *stripe.CheckoutSession, requested time.Time) (stripeSession, error) {
	if cs.ID == "" {
		return stripeSession{}, errors.New("stripe answered a checkout session without an id")
	}
	out := stripeSession{ID: cs.ID, URL: cs.URL, Livemode: cs.Livemode, ExpiresAt: requested}
	if cs.ExpiresAt > 0 {
		out.ExpiresAt = time.Unix(cs.ExpiresAt, 0).UTC()
	}
	return out, nil
}

// stripeOp is one kind of Stripe call: its metric label, how an error
// names it, and what the caller may do about a failure.
type stripeOp struct {
	label string // the operation label of the Stripe metrics
	what  string // "the checkout session": what Stripe did not make
	retry string // "retry later with the same Idempotency-Key"
}

// Stripe operations of the API.
var (
	opCheckoutCreate = stripeOp{"checkout_session_create", "the checkout session", "retry later with the same Idempotency-Key"}
	opSubCheckout    = stripeOp{"subscription_checkout_create", "the subscription checkout session", "retry later with the same Idempotency-Key"}
	opCheckoutGet    = stripeOp{"checkout_session_retrieve", "the open checkout session's state", "retry later with the same Idempotency-Key"}
	opSubUpdate      = stripeOp{"subscription_update", "the subscription update", "retry later; the update is idempotent"}
	opSubGet         = stripeOp{"subscription_retrieve", "the subscription", "retry later"}
	opPortalCreate   = stripeOp{"billing_portal_session_create", "the billing portal session", "retry later"}
)

// callStripe runs f, one Stripe operation, timing it and turning its
// failure into the caller's API error (counted by reason).
func (s *Server) callStripe(op stripeOp, f func() error) error {
	start := time.Now()
	err := f()
	s.metrics.StripeDuration.WithLabelValues(op.label).Observe(time.Since(start).Seconds())
	if err == nil {
		return nil
	}
	e, reason := stripeFailure(err, op)
	s.metrics.StripeErrors.WithLabelValues(op.label, reason).Inc()
	return e
}

// stripeFailure classifies a failed Stripe call into the API error the
// caller gets and the metric reason. Routes call Stripe before they write,
// or inside the transaction that rolls back, so nothing is written when it
// fails.
func stripeFailure(err error, op stripeOp) (*Error, string) {
	var se *stripe.Error
	switch {
	case errors.As(err, &se) && se.HTTPStatusCode == http.StatusTooManyRequests:
		return wrapErr(err, CodeStripeUnavailable, "Stripe is rate limiting us; "+op.retry), "rate_limited"
	case errors.As(err, &se) && se.HTTPStatusCode >= 500:
		return wrapErr(err, CodeStripeError, fmt.Sprintf("Stripe answered %d; %s", se.HTTPStatusCode, op.retry)), "server_error"
	case errors.As(err, &se) && se.HTTPStatusCode > 0:
		// A 4xx means our request or key is wrong: not the caller's fault,
		// and retrying will not help until the operator fixes it.
		return wrapErr(err, CodeStripeError, fmt.Sprintf("Stripe refused %s (%d %s)", op.what, se.HTTPStatusCode, se.Type)), "rejected"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), isNetErr(err):
		return wrapErr(err, CodeStripeUnavailable, "Stripe is unreachable or did not answer in time; "+op.retry), "unreachable"
	default:
		return wrapErr(err, CodeStripeUnavailable, op.what+" could not be made at Stripe; "+op.retry), "unreachable"
	}
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}
