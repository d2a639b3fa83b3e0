package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/paystream/paystream/internal/db"
)

// Error codes of the API's error body. Each code has one HTTP status
// (statusOf); docs/api.md lists them.
const (
	CodeInvalidRequest    = "invalid_request"        // a body, path or query value does not validate
	CodeUnauthorized      = "unauthorized"           // no or unknown bearer key
	CodeNotFound          = "not_found"              // route, content, purchase, plan or subscription unknown
	CodeContentFree       = "content_free"           // price 0: nothing to check out
	CodeAlreadyOwned      = "already_owned"          // the customer has active access
	CodeAlreadySubscribed = "already_subscribed"     // the customer has a live subscription to the plan
	CodeSubscriptionEnded = "subscription_ended"     // canceled or expired: nothing to cancel or resume
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
	CodeAlreadySubscribed: http.StatusConflict,
	CodeSubscriptionEnded: http.StatusConflict,
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

// invalidFields is the 400 naming every bad field; where says where they
// are ("fields" of the body, the "request" as a whole).
func invalidFields(where string, fields map[string]string) *Error {
	return &Error{Code: CodeInvalidRequest, Message: "invalid " + where + ": " + fieldList(fields), Fields: fields}
}

// fieldOrder is the order fields are named in a message.
var fieldOrder = []string{"customer_id", "content_id", "plan_id", "success_url", "cancel_url", "return_url",
	"Idempotency-Key", "customer", "content", "id", "query", "limit", "starting_after", "status",
	"kind", "refresh_url", "currency", "from", "to", "organization_id"}

func fieldList(fields map[string]string) string {
	var parts []string
	for _, k := range fieldOrder {
		if why, ok := fields[k]; ok {
			parts = append(parts, k+" "+why)
		}
	}
	return strings.Join(parts, "; ")
}

// queryProblem says what is wrong with the request's query string, or "".
func queryProblem(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return ""
	}
	if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
		return queryMalformed(err)
	}
	return ""
}

// queryMalformed is the field message of a query string url.ParseQuery
// could not read entirely.
func queryMalformed(err error) string {
	return "must be name=value pairs joined by & and percent-encoded (" + err.Error() + ")"
}

// dbFailure is the API error of a failed database call. A value Postgres
// refuses (bytes that are not text, a character its encoding cannot hold)
// is the caller's: 400, so that the caller fixes the request instead of
// retrying it as it would a 503. Every field is validated before it gets
// here; this is the net under that validation.
func dbFailure(err error) *Error {
	switch {
	case db.IsDataError(err):
		return wrapErr(err, CodeInvalidRequest, "the database refuses a value of the request: "+db.Message(err))
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return wrapErr(err, CodeUnavailable, "the request was cancelled or timed out")
	}
	return wrapErr(err, CodeUnavailable, "the database is unavailable; retry later")
}
