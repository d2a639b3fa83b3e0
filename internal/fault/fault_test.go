package fault_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/paystream/paystream/internal/fault"
)

// The one table: every code has an HTTP status and a JetStream action, and
// the pairs are the design's.
func TestClassification(t *testing.T) {
	tests := []struct {
		code   fault.Code
		status int
		action fault.Action
	}{
		{fault.Invalid, http.StatusBadRequest, fault.DeadLetter},
		{fault.Unauthenticated, http.StatusUnauthorized, fault.DeadLetter},
		{fault.NotFound, http.StatusNotFound, fault.DeadLetter},
		{fault.NotAllowed, http.StatusMethodNotAllowed, fault.DeadLetter},
		{fault.TooLarge, http.StatusRequestEntityTooLarge, fault.DeadLetter},
		{fault.RateLimited, http.StatusTooManyRequests, fault.Retry},
		{fault.Unavailable, http.StatusServiceUnavailable, fault.Retry},
		{fault.Pending, http.StatusServiceUnavailable, fault.Retry},
		{fault.Internal, http.StatusInternalServerError, fault.Retry},
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			err := fmt.Errorf("handle evt_1: %w", fault.New(tt.code, "some_reason", "boom"))
			if got := fault.HTTPStatus(err); got != tt.status {
				t.Errorf("HTTPStatus = %d, want %d", got, tt.status)
			}
			if got := fault.ActionOf(err); got != tt.action {
				t.Errorf("ActionOf = %v, want %v", got, tt.action)
			}
			if got := fault.ReasonOf(err); got != "some_reason" {
				t.Errorf("ReasonOf = %q", got)
			}
		})
	}
}

// An unclassified error is Internal: retried, never dropped or dead-lettered
// on first sight.
func TestUnclassifiedErrorsAreInternalAndRetried(t *testing.T) {
	err := errors.New("connection reset by peer")
	if fault.CodeOf(err) != fault.Internal || fault.ActionOf(err) != fault.Retry || fault.ReasonOf(err) != "internal" {
		t.Fatalf("code %s action %v reason %s", fault.CodeOf(err), fault.ActionOf(err), fault.ReasonOf(err))
	}
}

func TestWrapKeepsTheCause(t *testing.T) {
	cause := errors.New("duplicate key")
	err := fault.Wrap(cause, fault.Unavailable, "db", "insert purchase")
	if !errors.Is(err, cause) || err.Error() != "insert purchase: duplicate key" {
		t.Fatalf("err = %v", err)
	}
	if fault.Wrap(nil, fault.Invalid, "x", "y") != nil {
		t.Fatal("Wrap(nil) must stay nil")
	}
}
