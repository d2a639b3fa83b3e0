package api

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/paystream/paystream/internal/testenv"
)

// A value Postgres refuses is the caller's 400, never 503 "unavailable";
// the database being down or slow stays 503.
func TestDBFailureTellsDataFromOutage(t *testing.T) {
	bdb, _ := testenv.DB(t)
	ctx := context.Background()
	var s string
	notText := bdb.DB.QueryRowContext(ctx, "SELECT $1::text", "a\x00b").Scan(&s)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, refused := pgx.Connect(cctx, "postgres://postgres@"+addr+"/x?sslmode=disable&connect_timeout=2")
	pg := func(code, severity string) error {
		return fmt.Errorf("check access: %w", &pgconn.PgError{Code: code, Severity: severity, SeverityUnlocalized: severity, Message: "refused"})
	}

	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"NUL parameter (real 22021)", fmt.Errorf("check access: %w", notText), http.StatusBadRequest, CodeInvalidRequest},
		{"untranslatable 22P05", pg("22P05", "ERROR"), http.StatusBadRequest, CodeInvalidRequest},
		{"unreadable statement 08P01", pg("08P01", "ERROR"), http.StatusBadRequest, CodeInvalidRequest},
		{"connection refused (real)", refused, http.StatusServiceUnavailable, CodeUnavailable},
		{"broken protocol 08P01 FATAL", pg("08P01", "FATAL"), http.StatusServiceUnavailable, CodeUnavailable},
		{"admin shutdown 57P01", pg("57P01", "FATAL"), http.StatusServiceUnavailable, CodeUnavailable},
		{"deadline", context.DeadlineExceeded, http.StatusServiceUnavailable, CodeUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Fatal("no error to classify")
			}
			e := dbFailure(tt.err)
			if e.Status() != tt.status || e.Code != tt.code {
				t.Errorf("dbFailure(%v) = %d %s, want %d %s", tt.err, e.Status(), e.Code, tt.status, tt.code)
			}
			if tt.status == http.StatusBadRequest && (!strings.Contains(e.Message, "refuses a value") || strings.Contains(e.Message, "a\x00b")) {
				t.Errorf("message %q", e.Message)
			}
		})
	}
}
