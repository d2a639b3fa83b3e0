package fault_test

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

	"github.com/paystream/paystream/internal/fault"
)

// The store-unavailable list: the database being down pauses the instance;
// an event's own failures (a conflict, bad data, a slow query) do not.
func TestStoreUnavailable(t *testing.T) {
	pg := func(code string) error {
		return fault.Wrap(fmt.Errorf("apply: %w", &pgconn.PgError{Code: code}), fault.Unavailable, "database_unavailable", "db")
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
		{"bad conn", fmt.Errorf("query: %w", driver.ErrBadConn), true},
		{"deadline", context.DeadlineExceeded, false},
		{"canceled", context.Canceled, false},
		{"plain error", errors.New("amount mismatch"), false},
		{"timeout op error", &net.OpError{Op: "read", Err: timeoutErr{}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fault.StoreUnavailable(tt.err); got != tt.want {
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
	if !fault.StoreUnavailable(err) {
		t.Errorf("refused connection %v (%T) not classified as store unavailable", err, err)
	}
}
