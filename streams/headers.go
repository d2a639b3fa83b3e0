package streams

import (
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/stripeevent"
)

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

// MaxEventIDLen bounds the event id a message may carry (Stripe's are about
// 30 characters).
const MaxEventIDLen = 255

// HeaderError is a STRIPE_EVENTS message whose headers are missing,
// malformed, or disagree with its subject. Such a message did not come from
// paystream (or was corrupted) and never becomes valid.
type HeaderError struct {
	Name  string            // the header; "" when the subject disagrees with the headers
	Value string            // what it held (the subject when Name is "")
	Event stripeevent.Event // the headers decoded before the bad one
}

func (e *HeaderError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("subject %q does not match endpoint %q and type %q", e.Value, e.Event.Endpoint, e.Event.Type)
	}
	v := e.Value
	if len(v) > 64 {
		v = v[:64] + "…"
	}
	return fmt.Sprintf("header %s is missing or malformed: %q", e.Name, v)
}

// DecodeHeaders is Msg read backwards: it returns the event that Msg encoded
// into the headers of a message stored on subject, without its payload.
// Paystream-Received-At is the one optional header (it only feeds latency
// metrics); Source and RequestID are copied as found. Every other problem is
// a *HeaderError.
func DecodeHeaders(subject string, h nats.Header) (stripeevent.Event, error) {
	ev := stripeevent.Event{ID: h.Get(HeaderEventID)}
	if ev.ID == "" || len(ev.ID) > MaxEventIDLen {
		return ev, &HeaderError{Name: HeaderEventID, Value: ev.ID, Event: ev}
	}
	ev.Type = h.Get(HeaderEventType)
	if !ValidEventType(ev.Type) {
		return ev, &HeaderError{Name: HeaderEventType, Value: ev.Type, Event: ev}
	}
	ev.Endpoint = h.Get(HeaderEndpoint)
	if !ValidEndpoint(ev.Endpoint) {
		return ev, &HeaderError{Name: HeaderEndpoint, Value: ev.Endpoint, Event: ev}
	}
	if want, _ := EventSubject(ev.Endpoint, ev.Type); want != subject {
		return ev, &HeaderError{Value: subject, Event: ev}
	}
	ev.APIVersion = h.Get(HeaderAPIVersion)
	lm, err := strconv.ParseBool(h.Get(HeaderLivemode))
	if err != nil {
		return ev, &HeaderError{Name: HeaderLivemode, Value: h.Get(HeaderLivemode), Event: ev}
	}
	ev.Livemode = lm
	created, err := strconv.ParseInt(h.Get(HeaderCreated), 10, 64)
	if err != nil || created <= 0 {
		return ev, &HeaderError{Name: HeaderCreated, Value: h.Get(HeaderCreated), Event: ev}
	}
	ev.Created = time.Unix(created, 0).UTC()
	if v := h.Get(HeaderReceivedAt); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			ev.ReceivedAt = t
		}
	}
	ev.RequestID = h.Get(HeaderRequestID)
	ev.Source = h.Get(HeaderSource)
	return ev, nil
}
