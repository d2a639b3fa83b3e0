package fault

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// StoreUnavailable reports whether err says the database itself cannot be
// used right now, as opposed to this one event failing: the server refuses or
// drops connections, is shutting down or starting up, or is a read-only
// replica after a failover. The processor's circuit breaker pauses the whole
// instance on these instead of spending the event's retry budget. It is the
// one list of such errors; a bare timeout is not on it (a slow query and a
// dead server look alike), the breaker asks its probe about those.
func StoreUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "57P01", // admin_shutdown: pg_terminate_backend, a fast shutdown
			"57P02", // crash_shutdown
			"57P03", // cannot_connect_now: starting up, in recovery
			"25006", // read_only_sql_transaction: writing to a demoted primary after a failover
			"53300": // too_many_connections
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
