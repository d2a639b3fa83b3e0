package loadgen_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/loadgen"
	"github.com/paystream/paystream/internal/testenv"
)

// ScratchDatabase creates a database of its own on the server and drops it
// even while a session is still connected.
func TestScratchDatabaseCreatesAndDrops(t *testing.T) {
	admin := testenv.ServerURL(t)
	ctx := context.Background()
	dsn, drop, err := loadgen.ScratchDatabase(ctx, admin)
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
	exists := func() bool { return databaseExists(t, name) }
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

// databaseExists reports whether the server holds a database called name.
func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, testenv.ServerURL(t))
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

// OpenDemoDatabase migrates and seeds its scratch database; Close drops it,
// unless it is kept.
func TestOpenDemoDatabase(t *testing.T) {
	admin := testenv.ServerURL(t)
	ctx := context.Background()
	for _, keep := range []bool{false, true} {
		d, err := loadgen.OpenDemoDatabase(ctx, admin, keep, 2)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := pgx.ParseConfig(d.URL)
		if err != nil {
			d.Close()
			t.Fatal(err)
		}
		n, err := d.DB.NewSelect().Table("content").Where("id = ?", demo.ContentID).Count(ctx)
		if err != nil || n != 1 {
			t.Errorf("keep=%v: demo content rows = %d, %v", keep, n, err)
		}
		if d.Purchase.Amount != demo.PriceCents || d.Purchase.PlatformFee+d.Purchase.OrgFee+d.Purchase.Creator != d.Purchase.Amount {
			t.Errorf("keep=%v: purchase = %+v", keep, d.Purchase)
		}
		d.Close()
		if got := databaseExists(t, cfg.Database); got != keep {
			t.Errorf("keep=%v: %s exists after Close = %v", keep, cfg.Database, got)
		}
		if keep { // the test's own clean-up
			c, err := pgx.Connect(ctx, admin)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{cfg.Database}.Sanitize()+" WITH (FORCE)")
			c.Close(ctx)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestScratchDatabaseRejectsBadURL(t *testing.T) {
	_, _, err := loadgen.ScratchDatabase(context.Background(), "postgres://%zz")
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("err = %v, want one naming DATABASE_URL", err)
	}
}
