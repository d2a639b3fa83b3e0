package subscription

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"
	stripesub "github.com/stripe/stripe-go/v76/subscription"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/stripeclient"
)

// ReasonRefetchUnconfigured is the dead-letter reason of an event that
// needed a refetch in a processor without STRIPE_SECRET_KEY.
const ReasonRefetchUnconfigured = "stripe_refetch_unconfigured"

// NewFetcher returns the Fetcher of cfg: Stripe's API through stripe-go
// (stripeclient.New: STRIPE_API_BASE, its retries), each refetch bounded by
// cfg.RefetchTimeout. Without a key it returns a Fetcher that refuses every
// refetch permanently (ReasonRefetchUnconfigured): the event goes to
// STRIPE_DLQ, where the reason says what to do (set the key, restart,
// replay), rather than being retried until its delivery budget runs out,
// which no retry could change and which would end in the DLQ all the same
// under a misleading reason. Only events that need Stripe's answer to be
// ordered are refused: ties and undecidable payloads. An invoice or a
// checkout that overtook every event of its subscription waits for that
// subscription's own event instead (Store); the rest apply without Stripe.
func NewFetcher(cfg Config, m *Metrics, log *slog.Logger) (Fetcher, error) {
	cfg.setDefaults()
	if cfg.Stripe.Key == "" {
		return unconfigured{}, nil
	}
	sc := cfg.Stripe
	if sc.Timeout == 0 || sc.Timeout > cfg.RefetchTimeout {
		sc.Timeout = cfg.RefetchTimeout
	}
	c, err := stripeclient.New(sc, log)
	if err != nil {
		return nil, fmt.Errorf("subscription refetch: %w", err)
	}
	return &StripeFetcher{client: stripesub.Client{B: c.Backend, Key: c.Key}, timeout: cfg.RefetchTimeout, m: m}, nil
}

// StripeFetcher asks Stripe for a subscription (GET /v1/subscriptions/{id}).
type StripeFetcher struct {
	client  stripesub.Client
	timeout time.Duration
	m       *Metrics // nil counts nothing
}

var _ Fetcher = (*StripeFetcher)(nil)

// FetchSubscription implements Fetcher. It returns the body exactly as
// Stripe sent it, so DecodeSubscription reads it in whichever shape the
// account's API version gives. A subscription Stripe does not know wraps
// ErrNotInStripe; a refused key is retried (stripe_unauthorized: a key
// rotation in progress heals, a revoked key ends in the DLQ after the
// delivery budget); anything else — timeout, connection, 5xx, 429 after
// stripe-go's own retries — is unavailability, retried with backoff.
func (f *StripeFetcher) FetchSubscription(ctx context.Context, id string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	s, err := f.client.Get(id, &stripe.SubscriptionParams{Params: stripe.Params{Context: ctx}})
	var se *stripe.Error
	switch {
	case errors.As(err, &se) && se.HTTPStatusCode == http.StatusNotFound:
		f.m.refetched(refetchNotFound)
		return nil, fmt.Errorf("GET /v1/subscriptions/%s: %w (%s)", id, ErrNotInStripe, se.Msg)
	case errors.As(err, &se) && (se.HTTPStatusCode == http.StatusUnauthorized || se.HTTPStatusCode == http.StatusForbidden):
		f.m.refetched(refetchFailed)
		return nil, fault.Wrap(err, fault.Unavailable, "stripe_unauthorized",
			"GET /v1/subscriptions/"+id+": Stripe refused STRIPE_SECRET_KEY (it needs read access to Subscriptions)")
	case err != nil:
		f.m.refetched(refetchFailed)
		return nil, fmt.Errorf("GET /v1/subscriptions/%s: %w", id, err)
	case s.LastResponse == nil || len(s.LastResponse.RawJSON) == 0:
		f.m.refetched(refetchFailed)
		return nil, fmt.Errorf("GET /v1/subscriptions/%s: no response body", id)
	}
	f.m.refetched(refetchOK)
	return s.LastResponse.RawJSON, nil
}

// unconfigured is the Fetcher of a processor without a Stripe key.
type unconfigured struct{}

func (unconfigured) FetchSubscription(_ context.Context, id string) ([]byte, error) {
	return nil, fault.New(fault.Invalid, ReasonRefetchUnconfigured,
		"subscription %s needs Stripe's present state (a tie, an undecidable payload, or the first event of it) and the processor has no STRIPE_SECRET_KEY; set it (read access to Subscriptions), restart, then `paystream dlq replay --all --reason %s`",
		id, ReasonRefetchUnconfigured)
}
