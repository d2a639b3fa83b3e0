package stripeevent

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// Body is what Decode reads of an event's payload: the top-level fields
// the headers also carry, and data.object as the domain's type T.
type Body[T any] struct {
	ID         string
	Type       string
	APIVersion string
	Created    int64 // unix seconds
	// Account is the connected account (acct_…) of a Connect event: Stripe
	// puts it at the top level of events that happen on a connected
	// account; "" for the platform's own events.
	Account string
	Object  *T // data.object; nil when data or data.object is absent or null
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

// body is the JSON shape Decode reads; O holds data.object.
type body[O any] struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	APIVersion string `json:"api_version"`
	Created    int64  `json:"created"`
	Account    string `json:"account"`
	Data       struct {
		Object O `json:"object"`
	} `json:"data"`
}

// Decode reads ev.Payload in one encoding/json pass: data.object into a new
// T, and the payload's own id and type, which must equal ev's. Those came
// from the headers the edge wrote after verifying the signature over this
// very body, so a payload that disagrees is corrupt or was not published by
// the edge, and is refused with ErrOtherEvent.
//
// data.object must be a JSON object (or absent, or null): a T that decodes
// itself, as stripe-go's types do, would also take a bare id string, which a
// data.object never is. Opaque as T reads data.object of any shape without
// keeping it.
func Decode[T any](ev Event) (Body[T], error) {
	var b Body[T]
	var err error
	switch any((*T)(nil)).(type) {
	case *Opaque:
		var raw body[*T]
		err = json.Unmarshal(ev.Payload, &raw)
		b = Body[T]{ID: raw.ID, Type: raw.Type, APIVersion: raw.APIVersion, Created: raw.Created, Account: raw.Account, Object: raw.Data.Object}
	case json.Unmarshaler:
		var raw body[objectOnly[T]]
		err = json.Unmarshal(ev.Payload, &raw)
		b = Body[T]{ID: raw.ID, Type: raw.Type, APIVersion: raw.APIVersion, Created: raw.Created, Account: raw.Account, Object: raw.Data.Object.v}
	default:
		// A struct decodes only from a JSON object (or null) by itself.
		var raw body[*T]
		err = json.Unmarshal(ev.Payload, &raw)
		b = Body[T]{ID: raw.ID, Type: raw.Type, APIVersion: raw.APIVersion, Created: raw.Created, Account: raw.Account, Object: raw.Data.Object}
	}
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
		// T: a field of the wrong type, or a decoder of T refusing.
		return b, fmt.Errorf("%w: %w", ErrObject, err)
	}
	if b.ID != ev.ID || b.Type != ev.Type {
		return b, fmt.Errorf("%w: it is event %q of type %q, delivered as %q of type %q",
			ErrOtherEvent, b.ID, b.Type, ev.ID, ev.Type)
	}
	return b, nil
}

// objectOnly holds a data.object whose type T decodes itself: it lets only
// a JSON object (or null) through to T's decoder, which it calls directly,
// without a second pass over the bytes.
type objectOnly[T any] struct{ v *T }

func (o *objectOnly[T]) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		return nil
	case len(b) == 0 || b[0] != '{':
		return &json.UnmarshalTypeError{Value: "non-object", Type: reflect.TypeFor[T]()}
	}
	o.v = new(T)
	return any(o.v).(json.Unmarshaler).UnmarshalJSON(b)
}

// Opaque stands for a data.object that is not read: Decode skips it.
type Opaque struct{}

// UnmarshalJSON accepts any JSON value and keeps nothing of it.
func (*Opaque) UnmarshalJSON([]byte) error { return nil }
