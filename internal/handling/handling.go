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
