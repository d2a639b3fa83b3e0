// Package fault is paystream's one domain error type. An error carries a
// Code; one table maps each code to the HTTP status the edge answers and to
// the JetStream action the processor takes, so errors are classified once.
package fault

import (
	"errors"
	"fmt"
	"net/http"
)

// Code classifies an error.
type Code string

// Codes. Unknown errors count as Internal: transient, retried, and
// dead-lettered only when the retry budget runs out.
const (
	Invalid         Code = "invalid"         // malformed input; never retried
	Unauthenticated Code = "unauthenticated" // signature does not verify
	NotFound        Code = "not_found"       // unknown route or referenced row that will never exist
	NotAllowed      Code = "not_allowed"     // HTTP method not allowed on the route
	TooLarge        Code = "too_large"       // body over the limit
	RateLimited     Code = "rate_limited"    // client over its rate
	Unavailable     Code = "unavailable"     // broker or database down or slow
	Pending         Code = "pending"         // depends on a row not there yet (out-of-order event)
	Internal        Code = "internal"        // a bug or an unexpected failure
)

// Action is what the processor does with a message whose handling failed.
type Action int

// Actions.
const (
	Retry      Action = iota // NakWithDelay, growing backoff
	DeadLetter               // copy to STRIPE_DLQ, then Term
)

// classes is the one table: code → HTTP status and JetStream action.
var classes = map[Code]struct {
	status int
	action Action
}{
	Invalid:         {http.StatusBadRequest, DeadLetter},
	Unauthenticated: {http.StatusUnauthorized, DeadLetter},
	NotFound:        {http.StatusNotFound, DeadLetter},
	NotAllowed:      {http.StatusMethodNotAllowed, DeadLetter},
	TooLarge:        {http.StatusRequestEntityTooLarge, DeadLetter},
	RateLimited:     {http.StatusTooManyRequests, Retry},
	Unavailable:     {http.StatusServiceUnavailable, Retry},
	Pending:         {http.StatusServiceUnavailable, Retry},
	Internal:        {http.StatusInternalServerError, Retry},
}

// Error is a classified error. Reason is a short machine-readable word for
// metrics and DLQ headers (e.g. amount_mismatch); Msg is for humans.
type Error struct {
	Code   Code
	Reason string
	Msg    string
	Err    error // cause, may be nil
}

func (e *Error) Error() string {
	switch {
	case e.Err != nil && e.Msg != "":
		return e.Msg + ": " + e.Err.Error()
	case e.Err != nil:
		return e.Err.Error()
	default:
		return e.Msg
	}
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an Error with code and reason and a formatted message.
func New(code Code, reason, format string, args ...any) *Error {
	return &Error{Code: code, Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// Wrap classifies err with code and reason; nil stays nil.
func Wrap(err error, code Code, reason, msg string) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Reason: reason, Msg: msg, Err: err}
}

// CodeOf returns the code of the first *Error in err's chain, else Internal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// ReasonOf returns the reason of the first *Error in err's chain, else the
// code itself.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Reason != "" {
		return e.Reason
	}
	return string(CodeOf(err))
}

// HTTPStatus maps err to the status the edge answers.
func HTTPStatus(err error) int { return classes[CodeOf(err)].status }

// ActionOf maps err to what the processor does with the message.
func ActionOf(err error) Action { return classes[CodeOf(err)].action }
