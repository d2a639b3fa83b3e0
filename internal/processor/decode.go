package processor

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/streams"
)

// decodeEvent turns a delivered message into the handler's Event. Headers
// were set by our own edge from a verified event, so anything missing or
// garbled means the message did not come from it (or was corrupted) and will
// never become valid: the error is fault.Invalid and the message is
// dead-lettered. Paystream-Received-At is the one optional header: it only
// feeds the end-to-end histogram, and a payment must not be parked for it.
func decodeEvent(subject string, h nats.Header, data []byte, deliveries uint64) (handling.Event, error) {
	ev := handling.Event{Subject: subject, Deliveries: deliveries, Payload: json.RawMessage(data)}
	se, err := streams.DecodeHeaders(subject, h)
	ev.ID, ev.Type, ev.Endpoint, ev.APIVersion, ev.Livemode = se.ID, se.Type, se.Endpoint, se.APIVersion, se.Livemode
	if err != nil {
		return ev, fault.Wrap(err, fault.Invalid, streams.ReasonInvalidHeaders, "")
	}
	ev.Created = time.Unix(se.Created, 0).UTC()
	ev.ReceivedAt = se.ReceivedAt

	// The body must be the Stripe event the headers describe: the edge's
	// scanner checks it in one tight pass (the handler decodes what it needs).
	env, err := stripeevent.Scan(data)
	if err != nil {
		return ev, fault.Wrap(err, fault.Invalid, streams.ReasonInvalidPayload, "body is not a JSON object")
	}
	if env.ID != ev.ID || env.Type != ev.Type {
		return ev, fault.New(fault.Invalid, streams.ReasonInvalidPayload,
			"body is event %q of type %q, headers say %q of type %q", env.ID, env.Type, ev.ID, ev.Type)
	}
	return ev, nil
}
