package subscription

import (
	"context"
	"errors"

	"github.com/paystream/paystream/internal/fault"
)

// Fetcher reads a subscription's present state from Stripe (GET
// /v1/subscriptions/{id}): the answer that settles a tie or an undecidable
// payload. It returns the response body, of any API version; DecodeSubscription
// reads both shapes. The production implementation is NewFetcher's
// (stripe-go, STRIPE_API_BASE, its retries, a timeout); tests use fakes. An
// error the Fetcher classified (a *fault.Error) keeps its class.
type Fetcher interface {
	FetchSubscription(ctx context.Context, id string) ([]byte, error)
}

// ErrNotInStripe is what a Fetcher returns (wrapped) when Stripe answers that
// the subscription does not exist: an event of another account or mode,
// never to be retried.
var ErrNotInStripe = errors.New("no such subscription in Stripe")

// fetch asks f for subscription id and classifies the failure once: Stripe
// unreachable, slow or answering garbage is transient (the event is retried,
// and nothing stale is applied meanwhile); a subscription Stripe does not
// know is permanent.
func fetch(ctx context.Context, f Fetcher, id string) (*Subscription, error) {
	body, err := f.FetchSubscription(ctx, id)
	var classified *fault.Error
	switch {
	case errors.Is(err, ErrNotInStripe):
		return nil, fault.Wrap(err, fault.NotFound, "subscription_not_in_stripe", "fetch subscription "+id)
	case errors.As(err, &classified):
		return nil, err
	case err != nil:
		return nil, fault.Wrap(err, fault.Unavailable, "stripe_unavailable", "fetch subscription "+id)
	}
	s, err := DecodeSubscription(body)
	if err != nil {
		return nil, fault.Wrap(err, fault.Unavailable, "stripe_unavailable", "fetch subscription "+id+": unreadable answer")
	}
	if s.ID != id {
		return nil, fault.New(fault.Unavailable, "stripe_unavailable", "fetch subscription %s: Stripe answered subscription %q", id, s.ID)
	}
	return s, nil
}
