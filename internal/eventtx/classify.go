package eventtx

import (
	"context"
	"errors"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/streams"
)

// classify gives every error that is not a fault.Error yet its code:
// anything transient (connection loss, serialization failure, deadlock, a
// unique violation lost to a concurrent writer) is retried; data the
// database refuses by a CHECK or type rule, or a value only the data can
// make it refuse (db.IsDataError), can never apply.
func classify(err error) error {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return err
	}
	state := db.SQLState(err)
	switch {
	case state == db.UniqueViolation:
		return fault.Wrap(err, fault.Unavailable, "conflict", "concurrent write to the same rows; retry")
	case state == db.CheckViolation:
		return fault.Wrap(err, fault.Invalid, "constraint_violation", "the event would break a database rule")
	case db.IsDataError(err):
		return fault.Wrap(err, fault.Invalid, streams.ReasonInvalidPayload, "the database refuses a value of the event")
	case errors.Is(err, context.Canceled) || db.IsTransient(err):
		return fault.Wrap(err, fault.Unavailable, "database_unavailable", "database unavailable")
	}
	return fault.Wrap(err, fault.Internal, "internal", "apply stripe event")
}
