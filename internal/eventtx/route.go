package eventtx

import (
	"context"
	"errors"
	"time"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/streams"
)

// Event is a delivered Stripe event whose payload was decoded for its route.
type Event struct {
	stripeevent.Event
	// At is Stripe's event time in UTC: agreement windows and "in force"
	// rules are judged at it, never at the clock, so a replay decides the
	// same way.
	At time.Time
	// Object is data.object as its route's type (*T of On); nil for an
	// event of a type no route applies.
	Object any
	// Account is the payload's top-level account: the connected account
	// (acct_…) a Connect event happened on, "" for the platform's own
	// events.
	Account string
}

// Route is what one event type does inside its event's transaction. Make
// one with On.
type Route struct {
	object string
	decode func(stripeevent.Event) (any, payloadHead, error)
	apply  func(ctx context.Context, tx bun.Tx, ev Event, rec *Record) error
}

// On returns the route of an event type whose data.object is a Stripe
// object (object names it for messages: checkout.session, charge, …) that
// decodes into T. The payload is decoded once, before the transaction, into
// T and the event's own id and type, which must be the event's headers'; a
// payload that is not the event, or has no data.object, or whose object
// does not decode as T, is refused as invalid_payload without a transaction.
//
// apply runs inside the event's transaction (or the batch's, in the event's
// savepoint) and reports what it did through rec. An error rolls back
// everything the event wrote, its stripe_events row included, so a retried
// or replayed event starts afresh; a fault error says how to treat it
// (fault.Invalid dead-letters it, fault.Pending retries it), any other error
// is classified by the lifecycle.
func On[T any](object string, apply func(ctx context.Context, tx bun.Tx, ev Event, obj *T, rec *Record) error) Route {
	return Route{
		object: object,
		decode: func(se stripeevent.Event) (any, payloadHead, error) {
			obj, head, err := decodeAs[T](se)
			if err == nil && obj == nil {
				err = errNoObject
			}
			return obj, head, err
		},
		apply: func(ctx context.Context, tx bun.Tx, ev Event, rec *Record) error {
			return apply(ctx, tx, ev, ev.Object.(*T), rec)
		},
	}
}

// errNoObject is a payload without data.object, which every route reads.
var errNoObject = errors.New("payload has no data.object")

// payloadHead is what the lifecycle reads of a payload besides data.object:
// the values a caller may have left out of the event.
type payloadHead struct {
	apiVersion string
	created    int64 // unix seconds
	account    string
}

// decodeAs decodes se's payload with data.object as T, in one pass.
func decodeAs[T any](se stripeevent.Event) (*T, payloadHead, error) {
	b, err := stripeevent.Decode[T](se)
	return b.Object, payloadHead{apiVersion: b.APIVersion, created: b.Created, account: b.Account}, err
}

// Decode is the one decode of a delivered event: its payload read for its
// route in one pass (for a type no family routes, only the payload's id and
// type are read), checked to be the event se's headers describe. Its error
// is a permanent fault (invalid_payload). Handle and HandleBatch decode
// every event with it before any transaction.
func (h *Handler) Decode(se stripeevent.Event) (Event, error) {
	var obj any
	var head payloadHead
	var err error
	rt, routed := h.routes[se.Type]
	if routed {
		obj, head, err = rt.decode(se)
	} else {
		_, head, err = decodeAs[stripeevent.Opaque](se)
	}
	if err != nil {
		return Event{}, payloadFault(se, rt.object, err)
	}
	// The headers' values win; the payload's fill what a caller left out.
	at := se.Created
	if at.IsZero() && head.created > 0 {
		at = time.Unix(head.created, 0)
	}
	if at.IsZero() {
		return Event{}, fault.New(fault.Invalid, streams.ReasonInvalidPayload, "event %s has no creation time", se.ID)
	}
	if se.Endpoint == "" {
		se.Endpoint = streams.DefaultEndpoint
	}
	if se.APIVersion == "" {
		se.APIVersion = head.apiVersion
	}
	return Event{Event: se, At: at.UTC(), Object: obj, Account: head.account}, nil
}

// payloadFault is the permanent error of a payload that cannot be applied.
func payloadFault(se stripeevent.Event, object string, err error) error {
	var msg string
	switch {
	case errors.Is(err, errNoObject):
		msg = "event " + se.ID + " has no data.object"
	case errors.Is(err, stripeevent.ErrObject):
		msg = "data.object of " + se.ID + " is not a " + object
	case errors.Is(err, stripeevent.ErrOtherEvent):
		msg = "payload of " + se.ID + " is not the event its headers describe"
	default:
		msg = "payload of " + se.ID + " is not a Stripe event JSON"
	}
	return fault.Wrap(err, fault.Invalid, streams.ReasonInvalidPayload, msg)
}
