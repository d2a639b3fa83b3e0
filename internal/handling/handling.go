// Package handling is the contract between the processor's consumer runtime
// (which pulls, acks, retries and dead-letters messages) and the domain
// handlers (which apply a Stripe event to Postgres). The runtime hands over a
// stripeevent.Event whose headers it checked; the handler decodes the
// payload. The runtime knows nothing of purchases; the handlers know nothing
// of JetStream.
package handling

import (
	"context"

	"github.com/paystream/paystream/internal/stripeevent"
)

// Outcome is what a successful Handle did. Failures are errors classified by
// package fault (Invalid → dead letter, Pending/Unavailable/Internal → retry).
type Outcome string

// Outcomes counted in paystream_processor_events_total{outcome}.
const (
	Applied   Outcome = "applied"   // effects committed
	Duplicate Outcome = "duplicate" // already processed (same event id or same domain key): nothing changed
	Ignored   Outcome = "ignored"   // type not handled: recorded in stripe_events as ignored
)

// Handler applies one event in one Postgres transaction that also records the
// event in stripe_events. It must be idempotent: the runtime may deliver the
// same event many times, concurrently to several instances. The runtime does
// not read the payload: the handler decodes it (stripeevent.Decode) and
// refuses one that is not the event ev describes as permanent (fault.Invalid,
// reason invalid_payload).
type Handler interface {
	Handle(ctx context.Context, ev stripeevent.Event) (Outcome, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, ev stripeevent.Event) (Outcome, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, ev stripeevent.Event) (Outcome, error) {
	return f(ctx, ev)
}

var _ Handler = HandlerFunc(nil)

// Result is what a BatchHandler did with one event of a batch: an Outcome
// when Err is nil, else the event's own error, classified like Handle's.
type Result struct {
	Outcome Outcome
	Err     error
}

// BatchHandler is an optional extension of Handler: HandleBatch applies
// several events in as few transactions as it can (one commit instead of one
// per event is what makes it faster), and returns one Result per event, in
// order. The results must be exactly what Handle would have returned for each
// event on its own: one event's failure must never fail its neighbours, and an
// event reported as applied must be committed. The runtime calls it only with
// events that are already waiting; it never delays an event to fill a batch.
type BatchHandler interface {
	Handler
	HandleBatch(ctx context.Context, evs []stripeevent.Event) []Result
}
