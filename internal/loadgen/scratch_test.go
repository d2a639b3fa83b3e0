package loadgen_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/paystream/paystream/internal/loadgen"
	"github.com/paystream/paystream/internal/testenv"
)

// ScratchDatabase creates a database of its own on the server and drops it
// even while a session is still connected.
func TestScratchDatabaseCreatesAndDrops(t *testing.T) {
	testenv.PostgresURL(t) // skips (or fails under CI=true) without Postgres
	ctx := context.Background()
	dsn, drop, err := loadgen.ScratchDatabase(ctx, testenv.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		drop()
		t.Fatalf("scratch database URL %q: %v", dsn, err)
	}
	name := cfg.Database
	if !strings.HasPrefix(name, "paystream_bench_") {
		t.Fatalf("scratch database %q", name)
	}
	exists := func() bool {
		t.Helper()
		c, err := pgx.Connect(ctx, testenv.AdminURL())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	held, err := pgx.Connect(ctx, dsn) // a session the drop must force out
	if err != nil {
		drop()
		t.Fatal(err)
	}
	defer held.Close(ctx)
	if !exists() {
		t.Fatalf("%s was not created", name)
	}
	drop()
	if exists() {
		t.Fatalf("%s is still there after drop", name)
	}
}

func TestScratchDatabaseRejectsBadURL(t *testing.T) {
	_, _, err := loadgen.ScratchDatabase(context.Background(), "postgres://%zz")
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("err = %v, want one naming DATABASE_URL", err)
	}
}
