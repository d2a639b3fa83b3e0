package streams

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/stripeevent"
)

// ErrUnavailable wraps every failure to get a PubAck: the broker is down,
// slow, or the stream is missing. The edge answers 503 and Stripe retries.
var ErrUnavailable = errors.New("jetstream unavailable")

// PubResult is the broker's answer to one publish.
type PubResult struct {
	Sequence  uint64 // stream sequence of the stored (or original) message
	Duplicate bool   // true when the broker already had this Nats-Msg-Id
}

// Publisher publishes verified Stripe events to STRIPE_EVENTS.
//
// Publishing is asynchronous underneath and each caller waits only for its
// own PubAck, so concurrent requests share the broker round trips instead of
// queueing behind each other.
type Publisher struct {
	js     jetstream.JetStream
	timers sync.Pool // *time.Timer, stopped, for PublishWithin
}

// NewPublisher returns a Publisher on js. Create js with
// jetstream.WithPublishAsyncTimeout so abandoned acks are released.
func NewPublisher(js jetstream.JetStream) *Publisher { return &Publisher{js: js} }

// Msg builds the message for ev: its subject, its headers (which
// DecodeHeaders reads back) and its payload as the body.
func Msg(ev stripeevent.Event) (*nats.Msg, error) {
	subj, err := EventSubject(ev.Endpoint, ev.Type)
	if err != nil {
		return nil, err
	}
	if ev.ID == "" {
		return nil, errors.New("event id is empty")
	}
	src := ev.Source
	if src == "" {
		src = "edge"
	}
	// The header map is filled directly, its values slices of one array:
	// Header.Set allocates a slice per value and canonicalises each key at
	// run time. The keys are constants already in canonical form
	// (TestHeaderKeysAreCanonical), so Get and the wire format are the same.
	vals := new([10]string)
	h := make(nats.Header, len(vals)+2) // +2: room for traceparent, tracestate
	n := 0
	set := func(k, v string) {
		vals[n] = v
		h[k] = vals[n : n+1 : n+1] // cap 1: an Add elsewhere copies instead of overwriting a neighbour
		n++
	}
	set(HeaderMsgID, ev.ID)
	set(HeaderEventID, ev.ID)
	set(HeaderEndpoint, ev.Endpoint)
	set(HeaderEventType, ev.Type)
	set(HeaderAPIVersion, ev.APIVersion)
	set(HeaderLivemode, strconv.FormatBool(ev.Livemode))
	set(HeaderCreated, strconv.FormatInt(unixSeconds(ev.Created), 10))
	set(HeaderReceivedAt, ev.ReceivedAt.UTC().Format(time.RFC3339Nano))
	if ev.RequestID != "" {
		set(HeaderRequestID, ev.RequestID)
	}
	set(HeaderSource, src)
	return &nats.Msg{Subject: subj, Header: h, Data: ev.Payload}, nil
}

// unixSeconds is t in unix seconds, 0 for the zero time (a created the
// runtime refuses, like any value not after 1970).
func unixSeconds(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// Publish stores ev in STRIPE_EVENTS and waits for the PubAck or ctx.
// A duplicate id is a success with Duplicate set. Every broker failure is
// wrapped in ErrUnavailable; a malformed event is a plain error.
func (p *Publisher) Publish(ctx context.Context, ev stripeevent.Event) (PubResult, error) {
	m, err := Msg(ev)
	if err != nil {
		return PubResult{}, err
	}
	InjectTrace(ctx, m.Header)
	return PublishMsg(ctx, p.js, m)
}

// PublishWithin is Publish for a caller whose wait must not end with ctx
// (the edge: a client hanging up does not change whether its event was
// stored): it waits for the PubAck at most timeout, and ctx carries only the
// trace. It is Publish with context.WithTimeout(context.WithoutCancel(ctx),
// timeout), without the two contexts and the timer per call: the timers are
// reused. A timeout is an ErrUnavailable wrapping context.DeadlineExceeded.
//
// After a nil error nothing references ev.Payload any more and the caller
// may reuse it. After an error the message may still be in the client's
// hands (a late ack, a retry after "no responders"), and ev.Payload must be
// left alone.
func (p *Publisher) PublishWithin(ctx context.Context, ev stripeevent.Event, timeout time.Duration) (PubResult, error) {
	m, err := Msg(ev)
	if err != nil {
		return PubResult{}, err
	}
	InjectTrace(ctx, m.Header)
	fut, err := p.js.PublishMsgAsync(m)
	if err != nil {
		return PubResult{}, fmt.Errorf("%w: publish %s: %w", ErrUnavailable, m.Subject, err)
	}
	t, ok := p.timers.Get().(*time.Timer)
	if ok {
		t.Reset(timeout)
	} else {
		t = time.NewTimer(timeout)
	}
	defer func() {
		// Since Go 1.23 a stopped timer's channel holds no stale tick, so
		// the next Reset starts clean.
		t.Stop()
		p.timers.Put(t)
	}()
	select {
	case ack := <-fut.Ok():
		return PubResult{Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
	case err := <-fut.Err():
		return PubResult{}, fmt.Errorf("%w: publish %s: %w", ErrUnavailable, m.Subject, err)
	case <-t.C:
		return PubResult{}, fmt.Errorf("%w: publish %s: waiting for PubAck: %w", ErrUnavailable, m.Subject, context.DeadlineExceeded)
	}
}

// PublishMsg publishes m asynchronously and waits for its own PubAck or ctx.
// The Nats-Msg-Id header of m, if any, is the dedup key.
func PublishMsg(ctx context.Context, js jetstream.JetStream, m *nats.Msg) (PubResult, error) {
	fut, err := js.PublishMsgAsync(m)
	if err != nil {
		return PubResult{}, fmt.Errorf("%w: publish %s: %w", ErrUnavailable, m.Subject, err)
	}
	select {
	case ack := <-fut.Ok():
		return PubResult{Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
	case err := <-fut.Err():
		return PubResult{}, fmt.Errorf("%w: publish %s: %w", ErrUnavailable, m.Subject, err)
	case <-ctx.Done():
		return PubResult{}, fmt.Errorf("%w: publish %s: waiting for PubAck: %w", ErrUnavailable, m.Subject, ctx.Err())
	}
}
