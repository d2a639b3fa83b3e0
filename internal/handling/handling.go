// Package handling is the contract between the processor's consumer runtime
// (which pulls, acks, retries and dead-letters messages) and the domain
// handlers (which apply a Stripe event to Postgres). The runtime knows nothing
// of purchases; the handlers know nothing of JetStream.
package handling

import (
	"context"
	"encoding/json"
	"time"
)

// Event is one Stripe event as delivered from STRIPE_EVENTS.
type Event struct {
	ID         string          // Stripe event id, evt_…
	Type       string          // Stripe event type
	Endpoint   string          // edge endpoint name
	APIVersion string          // Stripe api_version of the payload
	Livemode   bool            //
	Created    time.Time       // Stripe's event time: "in force" rules are judged at it
	ReceivedAt time.Time       // edge receipt time (zero when unknown)
	Payload    json.RawMessage // the whole Stripe event JSON as received
	Subject    string          // JetStream subject
	Deliveries uint64          // JetStream delivery count, 1 on first delivery
}

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
// same event many times, concurrently to several instances.
type Handler interface {
	Handle(ctx context.Context, ev Event) (Outcome, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, ev Event) (Outcome, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, ev Event) (Outcome, error) { return f(ctx, ev) }

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
	HandleBatch(ctx context.Context, evs []Event) []Result
}
