// Package stripeevent is the one shape of a Stripe event in paystream. The
// edge parses a verified webhook body into an Event (Parse) and publishes
// it; the processor runtime reads it back from the message headers the edge
// wrote and hands it to the domain; the domain decodes its payload once
// (Decode), checking that the payload is the event the headers describe.
package stripeevent

import (
	"encoding/json"
	"time"
)

// Event is one Stripe event on its way from the edge to the database. The
// edge fills it from the verified body and the request; streams.Msg writes it
// into message headers beside the body, and streams.DecodeHeaders reads it
// back for the processor runtime, which adds the delivery fields.
type Event struct {
	ID         string    // evt_…: the broker's dedup key and the stripe_events key
	Type       string    // e.g. checkout.session.completed
	APIVersion string    // api_version of the payload; any version is carried
	Livemode   bool      //
	Created    time.Time // Stripe's event time: "in force" rules are judged at it
	Endpoint   string    // edge endpoint name: default for /webhooks/stripe, <name> for /webhooks/stripe/<name>
	ReceivedAt time.Time // when the edge read the request (zero when unknown)
	RequestID  string    // edge request id, also in the edge's logs
	Source     string    // edge, reconcile or dlq-replay; "" means edge

	// Payload is the body as Stripe sent it (and as the signature covered):
	// stored as it came, decoded only by the domain.
	Payload json.RawMessage

	// Set by the processor runtime on delivery.
	Subject    string // JetStream subject
	Deliveries uint64 // JetStream delivery count, 1 on first delivery
}
