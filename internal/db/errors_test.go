package db_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/testenv"
)

// The store-unavailable list: the database being down pauses the instance;
// an event's own failures (a conflict, bad data, a slow query) do not.
func TestStoreUnavailable(t *testing.T) {
	pg := func(code string) error {
		return fault.Wrap(fmt.Errorf("apply: %w", &pgconn.PgError{Code: code}), fault.Unavailable, "database_unavailable", "db")
	}
	protocol := func(severity string) error {
		return fmt.Errorf("apply: %w", &pgconn.PgError{Code: "08P01", Severity: severity, SeverityUnlocalized: severity, Message: "invalid message format"})
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"admin shutdown 57P01", pg("57P01"), true},
		{"crash shutdown 57P02", pg("57P02"), true},
		{"cannot connect now 57P03", pg("57P03"), true},
		{"read-only after failover 25006", pg("25006"), true},
		{"connection failure 08006", pg("08006"), true},
		{"connection does not exist 08003", pg("08003"), true},
		{"too many connections 53300", pg("53300"), true},
		{"serialization failure 40001", pg("40001"), false},
		{"unique violation 23505", pg("23505"), false},
		{"check violation 23514", pg("23514"), false},
		{"not UTF-8 22021", pg("22021"), false},
		{"untranslatable 22P05", pg("22P05"), false},
		{"statement unreadable 08P01 ERROR", protocol("ERROR"), false},
		{"protocol broken 08P01 FATAL", protocol("FATAL"), true},
		{"bad conn", fmt.Errorf("query: %w", driver.ErrBadConn), true},
		{"deadline", context.DeadlineExceeded, false},
		{"canceled", context.Canceled, false},
		{"plain error", errors.New("amount mismatch"), false},
		{"timeout op error", &net.OpError{Op: "read", Err: timeoutErr{}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := db.StoreUnavailable(tt.err); got != tt.want {
				t.Errorf("StoreUnavailable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// What pgx really returns when nothing listens on the database's port.
func TestStoreUnavailableRefusedConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = pgx.Connect(ctx, "postgres://postgres@"+addr+"/x?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	if !db.StoreUnavailable(err) {
		t.Errorf("refused connection %v (%T) not classified as store unavailable", err, err)
	}
}

// dataErrors provokes, against a real Postgres, each error a value alone
// can cause, with the way the value reached the server.
func dataErrors(t *testing.T) map[string]error {
	t.Helper()
	bdb, dsn := testenv.DB(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	errs := map[string]error{}
	var s string
	errs["NUL as a parameter (22021)"] = bdb.DB.QueryRowContext(ctx, "SELECT $1::text", "a\x00b").Scan(&s)
	errs["invalid UTF-8 as a parameter (22021)"] = bdb.DB.QueryRowContext(ctx, "SELECT $1::text", "a\xffb").Scan(&s)
	_, errs["NUL escape in a jsonb literal (22P05)"] = bdb.ExecContext(ctx, "SELECT ?::jsonb", `{"a":"\u0000"}`)
	_, errs["NUL inside the SQL text (08P01)"] = conn.Exec(ctx, "SELECT 'a\x00b'", pgx.QueryExecModeSimpleProtocol)
	_, errs["NUL in a simple-protocol argument (08P01)"] = conn.Exec(ctx, "SELECT $1::text", pgx.QueryExecModeSimpleProtocol, "a\x00b")
	// Each left its connection usable: the server refused the value, not
	// the client.
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("connection lost after a protocol error: %v", err)
	}
	return errs
}

// Errors only a value can cause are data errors: never the store being
// unavailable, never worth a retry.
func TestDataErrorsAreNeitherOutagesNorTransient(t *testing.T) {
	for name, err := range dataErrors(t) {
		t.Run(name, func(t *testing.T) {
			if err == nil {
				t.Fatal("Postgres took the value")
			}
			wrapped := fmt.Errorf("apply: %w", err)
			if !db.IsDataError(wrapped) || db.StoreUnavailable(wrapped) || db.IsTransient(wrapped) {
				t.Errorf("%v (SQLSTATE %s): data %v, unavailable %v, transient %v; want true, false, false",
					err, db.SQLState(err), db.IsDataError(wrapped), db.StoreUnavailable(wrapped), db.IsTransient(wrapped))
			}
			if db.Message(wrapped) == "" || db.Message(wrapped) == wrapped.Error() {
				t.Errorf("Message(%v) = %q, want the server's message", err, db.Message(wrapped))
			}
		})
	}
}

func TestIsTransient(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("apply: %w", &pgconn.PgError{Code: code}) }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"serialization failure 40001", pg("40001"), true},
		{"deadlock 40P01", pg("40P01"), true},
		{"lock not available 55P03", pg("55P03"), true},
		{"admin shutdown 57P01", pg("57P01"), true},
		{"query canceled 57014", pg("57014"), true},
		{"out of memory 53200", pg("53200"), true},
		{"connection failure 08006", pg("08006"), true},
		{"read-only after failover 25006", pg("25006"), true},
		{"bad conn", fmt.Errorf("query: %w", driver.ErrBadConn), true},
		{"deadline", context.DeadlineExceeded, true},
		{"unique violation 23505", pg("23505"), false},
		{"check violation 23514", pg("23514"), false},
		{"syntax error 42601", pg("42601"), false},
		{"not UTF-8 22021", pg("22021"), false},
		{"numeric out of range 22003", pg("22003"), false},
		{"plain error", errors.New("amount mismatch"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := db.IsTransient(tt.err); got != tt.want {
				t.Errorf("IsTransient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
