package stripeevent

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Body is what Decode reads of an event's payload: the top-level fields
// the headers also carry, and data.object as the domain's type T.
type Body[T any] struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	APIVersion string `json:"api_version"`
	Created    int64  `json:"created"` // unix seconds
	Data       struct {
		Object *T `json:"object"` // nil when data or data.object is absent or null
	} `json:"data"`
}

// Errors of Decode, each wrapped with the detail: the payload is not the
// Stripe event it was delivered as. None can become valid by retrying.
var (
	ErrNotJSON    = errors.New("payload is not a Stripe event JSON object")
	ErrObject     = errors.New("data.object is not of the expected shape")
	ErrOtherEvent = errors.New("payload is another event than its headers say")
)

// objectField is where data.object's errors are: encoding/json names the
// field of a type error by its path from the top.
const objectField = "data.object"

// Decode reads ev.Payload in one encoding/json pass: data.object into a new
// T, and the payload's own id and type, which must equal ev's. Those came
// from the headers the edge wrote after verifying the signature over this
// very body, so a payload that disagrees is corrupt or was not published by
// the edge, and is refused with ErrOtherEvent.
//
// Opaque as T reads data.object of any shape without keeping it.
func Decode[T any](ev Event) (Body[T], error) {
	var b Body[T]
	err := json.Unmarshal(ev.Payload, &b)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
	case errors.As(err, &syntax):
		return b, fmt.Errorf("%w: %w", ErrNotJSON, err)
	case errors.As(err, &typ) && !strings.HasPrefix(typ.Field, objectField):
		// A top-level field of the wrong type, or not an object at all.
		return b, fmt.Errorf("%w: %w", ErrNotJSON, err)
	default:
		// The body is valid JSON (encoding/json checks the whole of it
		// before decoding), so what is left is data.object not decoding as
		// T: a field of the wrong type, or a custom decoder of T refusing.
		return b, fmt.Errorf("%w: %w", ErrObject, err)
	}
	if b.ID != ev.ID || b.Type != ev.Type {
		return b, fmt.Errorf("%w: it is event %q of type %q, delivered as %q of type %q",
			ErrOtherEvent, b.ID, b.Type, ev.ID, ev.Type)
	}
	return b, nil
}

// Opaque stands for a data.object that is not read: Decode skips it.
type Opaque struct{}

// UnmarshalJSON accepts any JSON value and keeps nothing of it.
func (*Opaque) UnmarshalJSON([]byte) error { return nil }
