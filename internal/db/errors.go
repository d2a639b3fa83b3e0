package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATE codes paystream reacts to.
const (
	UniqueViolation      = "23505"
	CheckViolation       = "23514"
	ForeignKeyViolation  = "23503"
	SerializationFailure = "40001"
	DeadlockDetected     = "40P01"
	LockNotAvailable     = "55P03"
	AdminShutdown        = "57P01" // pg_terminate_backend, a fast shutdown
	CrashShutdown        = "57P02"
	CannotConnectNow     = "57P03" // starting up, in recovery
	ReadOnlyTransaction  = "25006" // writing to a demoted primary after a failover
	TooManyConnections   = "53300"
	UndefinedTable       = "42P01"
	ProtocolViolation    = "08P01"
)

// SQLState returns the SQLSTATE of a Postgres error in err's chain, or "".
func SQLState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// Message is the server's message of a Postgres error in err's chain (it
// names what was refused, never the statement's values), else err's text.
func Message(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Message
	}
	return err.Error()
}

// IsDataError reports whether Postgres refused the statement because of a
// value it carries, which no retry and no other server can change:
//   - a data exception (class 22), among them 22021 (bytes that are not
//     UTF-8, or a NUL in a text parameter) and 22P05 (a character or
//     escape the encoding cannot hold, such as \u0000 in jsonb);
//   - a protocol violation (08P01) at severity ERROR: the server could not
//     read the statement's message (a NUL inside the SQL text ends the
//     string early) and keeps the connection. A protocol violation that
//     breaks the connection is FATAL and is no data error.
//
// Such an error is the input's fault: a 400 or a dead letter, never an
// outage.
func IsDataError(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	if len(pe.Code) == 5 && pe.Code[:2] == "22" {
		return true
	}
	return pe.Code == ProtocolViolation && severity(pe) == "ERROR"
}

// severity is the untranslated severity of pe (Postgres 9.6 and later send
// it beside the localised one).
func severity(pe *pgconn.PgError) string {
	if pe.SeverityUnlocalized != "" {
		return pe.SeverityUnlocalized
	}
	return pe.Severity
}

// StoreUnavailable reports whether err says the database itself cannot be
// used right now, as opposed to this one statement failing: the server
// refuses or drops connections, is shutting down or starting up, or is a
// read-only replica after a failover. The processor's circuit breaker
// pauses the whole instance on these instead of spending the event's retry
// budget. A bare timeout is not on the list (a slow query and a dead server
// look alike; the breaker asks its probe about those), nor is a data error.
func StoreUnavailable(err error) bool {
	if err == nil || IsDataError(err) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case AdminShutdown, CrashShutdown, CannotConnectNow, ReadOnlyTransaction, TooManyConnections:
			return true
		}
		// Class 08: connection exception.
		return len(pe.Code) == 5 && pe.Code[:2] == "08"
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || pgconn.SafeToRetry(err) {
		return true // no connection could be made, or it broke before the query was sent
	}
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return true
	}
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

// IsTransient reports whether the statement may succeed when retried: the
// store is unavailable (StoreUnavailable), the statement lost to another
// (serialization failure, deadlock, lock timeout), the server lacks
// resources or an operator intervened (classes 53 and 57), or it ran out
// of time. A data error never is.
func IsTransient(err error) bool {
	if err == nil || IsDataError(err) {
		return false
	}
	if StoreUnavailable(err) {
		return true
	}
	switch s := SQLState(err); {
	case s == SerializationFailure, s == DeadlockDetected, s == LockNotAvailable:
		return true
	case len(s) == 5 && (s[:2] == "53" || s[:2] == "57"):
		return true // insufficient resources, operator intervention
	}
	return errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err)
}
