package streams

import "github.com/nats-io/nats.go/jetstream"

// Headers carried by every message on STRIPE_EVENTS. The edge sets them from
// the verified event; the processor and operators read them without decoding
// the body.
const (
	HeaderMsgID      = jetstream.MsgIDHeader   // Stripe event id; broker-side dedup key
	HeaderEventID    = "Paystream-Event-Id"    // Stripe event id (kept when a replay changes Nats-Msg-Id)
	HeaderEndpoint   = "Paystream-Endpoint"    // endpoint name, e.g. default, booking
	HeaderEventType  = "Paystream-Event-Type"  // Stripe event type
	HeaderAPIVersion = "Paystream-Api-Version" // Stripe api_version of the payload
	HeaderLivemode   = "Paystream-Livemode"    // "true" or "false"
	HeaderCreated    = "Paystream-Created"     // Stripe event created, unix seconds
	HeaderReceivedAt = "Paystream-Received-At" // edge receipt time, RFC 3339 with nanoseconds
	HeaderRequestID  = "Paystream-Request-Id"  // edge request id, also in the edge's logs
	HeaderSource     = "Paystream-Source"      // edge, reconcile or dlq-replay
)

// Headers added to a STRIPE_DLQ copy, beside every original header.
const (
	HeaderDLQReason     = "Paystream-Dlq-Reason"     // machine-readable reason code
	HeaderDLQError      = "Paystream-Dlq-Error"      // last error, for humans
	HeaderDLQDeliveries = "Paystream-Dlq-Deliveries" // delivery count when dead-lettered
	HeaderDLQSubject    = "Paystream-Dlq-Subject"    // original subject
	HeaderDLQStreamSeq  = "Paystream-Dlq-Stream-Seq" // sequence in STRIPE_EVENTS
	HeaderDLQAt         = "Paystream-Dlq-At"         // when it was dead-lettered, RFC 3339
)
