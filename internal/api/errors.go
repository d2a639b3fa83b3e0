package api

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error codes of the API's error body. Each code has one HTTP status
// (statusOf); docs/api.md lists them.
const (
	CodeInvalidRequest    = "invalid_request"        // a body, path or query value does not validate
	CodeUnauthorized      = "unauthorized"           // no or unknown bearer key
	CodeNotFound          = "not_found"              // route, content or purchase unknown
	CodeContentFree       = "content_free"           // price 0: nothing to check out
	CodeAlreadyOwned      = "already_owned"          // the customer has active access
	CodeIdempotencyReused = "idempotency_key_reused" // same key, other customer or content
	CodeRateLimited       = "rate_limited"           // API_RATE_LIMIT hit
	CodeStripeError       = "stripe_error"           // Stripe answered 5xx or refused our request
	CodeStripeUnavailable = "stripe_unavailable"     // Stripe unreachable, timed out or rate limiting us
	CodeUnavailable       = "unavailable"            // the database is unreachable
	CodeInternal          = "internal"               // a bug
)

// statusOf maps an error code to its HTTP status: the one table.
var statusOf = map[string]int{
	CodeInvalidRequest:    http.StatusBadRequest,
	CodeContentFree:       http.StatusBadRequest,
	CodeIdempotencyReused: http.StatusBadRequest,
	CodeUnauthorized:      http.StatusUnauthorized,
	CodeNotFound:          http.StatusNotFound,
	CodeAlreadyOwned:      http.StatusConflict,
	CodeRateLimited:       http.StatusTooManyRequests,
	CodeStripeError:       http.StatusBadGateway,
	CodeStripeUnavailable: http.StatusServiceUnavailable,
	CodeUnavailable:       http.StatusServiceUnavailable,
	CodeInternal:          http.StatusInternalServerError,
}

// Error is an API error: a code from the table above and a message for the
// caller. Fields names the invalid fields of a 400.
type Error struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
	err     error             // the cause, logged, never sent
}

func (e *Error) Error() string {
	if e.err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.err)
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.err }

// errorf builds an Error of code.
func errorf(code, format string, a ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, a...)}
}

// wrapErr builds an Error of code around a cause that is logged, not sent.
func wrapErr(err error, code, message string) *Error {
	return &Error{Code: code, Message: message, err: err}
}

// Status is the HTTP status of e.
func (e *Error) Status() int {
	if s, ok := statusOf[e.Code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// errorBody is the one error shape: {"error": {"code", "message"}}.
type errorBody struct {
	Error *Error `json:"error"`
}

// writeJSON writes v as the response body with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
