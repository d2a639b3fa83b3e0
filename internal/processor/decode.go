package processor

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/streams"
)

// maxEventIDLen bounds the event id we accept (Stripe's are ~30 characters).
const maxEventIDLen = 255

// decodeEvent turns a delivered message into the handler's Event. Headers
// were set by our own edge from a verified event, so anything missing or
// garbled means the message did not come from it (or was corrupted) and will
// never become valid: the error is fault.Invalid and the message is
// dead-lettered. Paystream-Received-At is the one optional header: it only
// feeds the end-to-end histogram, and a payment must not be parked for it.
func decodeEvent(subject string, h nats.Header, data []byte, deliveries uint64) (handling.Event, error) {
	ev := handling.Event{Subject: subject, Deliveries: deliveries, Payload: json.RawMessage(data)}
	ev.ID = h.Get(streams.HeaderEventID)
	if ev.ID == "" || len(ev.ID) > maxEventIDLen {
		return ev, invalidHeader(streams.HeaderEventID, ev.ID)
	}
	ev.Type = h.Get(streams.HeaderEventType)
	if !streams.ValidEventType(ev.Type) {
		return ev, invalidHeader(streams.HeaderEventType, ev.Type)
	}
	ev.Endpoint = h.Get(streams.HeaderEndpoint)
	if !streams.ValidEndpoint(ev.Endpoint) {
		return ev, invalidHeader(streams.HeaderEndpoint, ev.Endpoint)
	}
	if want, _ := streams.EventSubject(ev.Endpoint, ev.Type); want != subject {
		return ev, fault.New(fault.Invalid, streams.ReasonInvalidHeaders,
			"subject %q does not match endpoint %q and type %q", subject, ev.Endpoint, ev.Type)
	}
	ev.APIVersion = h.Get(streams.HeaderAPIVersion)
	lm, err := strconv.ParseBool(h.Get(streams.HeaderLivemode))
	if err != nil {
		return ev, invalidHeader(streams.HeaderLivemode, h.Get(streams.HeaderLivemode))
	}
	ev.Livemode = lm
	created, err := strconv.ParseInt(h.Get(streams.HeaderCreated), 10, 64)
	if err != nil || created <= 0 {
		return ev, invalidHeader(streams.HeaderCreated, h.Get(streams.HeaderCreated))
	}
	ev.Created = time.Unix(created, 0).UTC()
	if v := h.Get(streams.HeaderReceivedAt); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			ev.ReceivedAt = t
		}
	}

	// The body must be the Stripe event the headers describe.
	var env struct {
		ID     string `json:"id"`
		Type   string `json:"type"`
		Object string `json:"object"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return ev, fault.Wrap(err, fault.Invalid, streams.ReasonInvalidPayload, "body is not a JSON object")
	}
	if env.ID != ev.ID || env.Type != ev.Type {
		return ev, fault.New(fault.Invalid, streams.ReasonInvalidPayload,
			"body is event %q of type %q, headers say %q of type %q", env.ID, env.Type, ev.ID, ev.Type)
	}
	return ev, nil
}

func invalidHeader(name, value string) error {
	if len(value) > 64 {
		value = value[:64] + "…"
	}
	return fault.New(fault.Invalid, streams.ReasonInvalidHeaders, "header %s is missing or malformed: %q", name, value)
}
