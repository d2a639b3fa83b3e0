package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/event"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/stripeclient"
)

// StripeLister lists events with stripe-go's Events client and its
// auto-paginating list iterator.
type StripeLister struct {
	client event.Client
}

var _ Lister = (*StripeLister)(nil)

// NewStripeLister returns a Lister on the Stripe API (or on the fake or
// proxy STRIPE_API_BASE names), through stripeclient.New: stripe-go retries
// retryable answers itself, and Run backs off further when an error outlasts
// that.
func NewStripeLister(cfg stripeclient.Config, log *slog.Logger) (*StripeLister, error) {
	c, err := stripeclient.New(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	return &StripeLister{client: event.Client{B: c.Backend, Key: c.Key}}, nil
}

// ListEvents implements Lister.
//
// Raw bytes: the event handed on is the exact JSON object Stripe served in
// the list page, not a re-encoding of stripe.Event. Re-encoding would not
// round-trip: stripe.Event has no field for attributes newer than the
// library (e.g. `context`), turns `"request": {"id": null}` into `""`, adds
// `"account": ""`, and drops anything else it does not model, so the
// processor and the stripe_events.payload audit copy would see something
// Stripe never sent. stripe-go keeps each page's body in
// LastResponse.RawJSON; we split its `data` array into json.RawMessage
// items and pair them with the iterator's events by id.
func (l *StripeLister) ListEvents(ctx context.Context, q Query, fn func(Listed) error) error {
	params := &stripe.EventListParams{
		ListParams:   stripe.ListParams{Context: ctx, Limit: stripe.Int64(int64(q.PageSize))},
		CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: q.CreatedGTE.Unix()},
		Types:        stripe.StringSlice(q.Types),
	}
	if q.StartingAfter != "" {
		params.StartingAfter = stripe.String(q.StartingAfter)
	}
	it := l.client.List(params)
	var page *stripe.EventList
	var raws map[string]json.RawMessage
	for it.Next() {
		if lst := it.EventList(); lst != page {
			page = lst
			var err error
			if raws, err = rawItems(lst); err != nil {
				return err
			}
		}
		e := it.Event()
		raw, ok := raws[e.ID]
		if !ok {
			return fault.New(fault.Internal, "stripe_page_mismatch",
				"reconcile: event %s of the list page is missing from the page's raw JSON", e.ID)
		}
		err := fn(Listed{ID: e.ID, Type: string(e.Type), APIVersion: e.APIVersion, Livemode: e.Livemode,
			Created: e.Created, Raw: raw})
		if err != nil {
			return err
		}
	}
	if err := it.Err(); err != nil {
		return classifyStripe(err)
	}
	return nil
}

// rawItems maps the id of each event of a page to its exact JSON.
func rawItems(lst *stripe.EventList) (map[string]json.RawMessage, error) {
	if lst.LastResponse == nil {
		return nil, fault.New(fault.Internal, "stripe_page_mismatch", "reconcile: list page without a response body")
	}
	var body struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(lst.LastResponse.RawJSON, &body); err != nil {
		return nil, fault.Wrap(err, fault.Unavailable, "stripe_bad_page", "reconcile: decode Stripe list page")
	}
	out := make(map[string]json.RawMessage, len(body.Data))
	for _, raw := range body.Data {
		var head struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return nil, fault.Wrap(err, fault.Unavailable, "stripe_bad_page", "reconcile: decode Stripe list item")
		}
		out[head.ID] = raw
	}
	return out, nil
}

// classifyStripe turns a stripe-go error into a fault error whose message an
// operator can act on; stripe.Error's own Error() is a JSON dump.
func classifyStripe(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("reconcile: list Stripe events: %w", err)
	}
	var se *stripe.Error
	if !errors.As(err, &se) {
		// Connection refused, timeout, a body that is not JSON: stripe-go has
		// already retried these; they are worth another try later.
		return fault.Wrap(err, fault.Unavailable, "stripe_unreachable", "reconcile: list Stripe events")
	}
	desc := fmt.Sprintf("Stripe API answered %d %s", se.HTTPStatusCode, se.Type)
	if se.Code != "" {
		desc += " (" + string(se.Code) + ")"
	}
	if se.Msg != "" {
		desc += ": " + se.Msg
	}
	if se.RequestID != "" {
		desc += " [request " + se.RequestID + "]"
	}
	plain := errors.New(desc)
	switch s := se.HTTPStatusCode; {
	case s == http.StatusUnauthorized:
		return fault.Wrap(plain, fault.Unauthenticated, "stripe_auth",
			"reconcile: Stripe rejected STRIPE_SECRET_KEY (wrong, revoked, or for another account)")
	case s == http.StatusForbidden:
		return fault.Wrap(plain, fault.Unauthenticated, "stripe_permission",
			"reconcile: STRIPE_SECRET_KEY may not list events (a restricted rk_… key needs read access to Events)")
	case s == http.StatusTooManyRequests:
		return &retryAfterError{error: fault.Wrap(plain, fault.RateLimited, "stripe_rate_limited",
			"reconcile: list Stripe events"), after: retryAfter(se)}
	case s == http.StatusConflict || s >= 500:
		return &retryAfterError{error: fault.Wrap(plain, fault.Unavailable, "stripe_unavailable",
			"reconcile: list Stripe events"), after: retryAfter(se)}
	default:
		return fault.Wrap(plain, fault.Invalid, "stripe_request", "reconcile: list Stripe events")
	}
}

// maxRetryAfter caps a server-suggested delay: a hostile or broken proxy
// must not park a run for hours.
const maxRetryAfter = 5 * time.Minute

func retryAfter(se *stripe.Error) time.Duration {
	if se.LastResponse == nil {
		return 0
	}
	v := se.LastResponse.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return min(time.Duration(n)*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), maxRetryAfter)
	}
	return 0
}

// retryAfterError carries the delay an API answer asked for.
type retryAfterError struct {
	error
	after time.Duration
}

func (e *retryAfterError) Unwrap() error { return e.error }

// RetryAfter returns the delay a Lister error asks to wait before the next
// try (from Stripe's Retry-After header), or 0.
func RetryAfter(err error) time.Duration {
	var ra *retryAfterError
	if errors.As(err, &ra) {
		return ra.after
	}
	return 0
}
