package processor

import (
	"github.com/nats-io/nats.go"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/streams"
)

// decodeEvent turns a delivered message into the event the handler gets.
// Headers were set by our own edge from a verified event, so anything
// missing or garbled means the message did not come from it (or was
// corrupted) and will never become valid: the error is fault.Invalid and the
// message is dead-lettered. Paystream-Received-At is the one optional
// header: it only feeds the end-to-end histogram, and a payment must not be
// parked for it.
//
// The body is not read here: the handler decodes it once, and checks as it
// does that it is the event the headers describe.
func decodeEvent(subject string, h nats.Header, data []byte, deliveries uint64) (stripeevent.Event, error) {
	ev, err := streams.DecodeHeaders(subject, h)
	ev.Payload, ev.Subject, ev.Deliveries = data, subject, deliveries
	if err != nil {
		return ev, fault.Wrap(err, fault.Invalid, streams.ReasonInvalidHeaders, "")
	}
	return ev, nil
}
