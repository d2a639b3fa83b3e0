package migrations_test

import (
	"context"
	"errors"
	"testing"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/migrations"
)

func TestUpRollbackUp(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.PostgresURL(t)
	bdb, err := db.Open(ctx, dsn, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bdb.Close() })

	if err := migrations.Current(ctx, bdb); !errors.Is(err, migrations.ErrSchemaOutdated) {
		t.Fatalf("Current on empty database = %v, want ErrSchemaOutdated", err)
	}
	if _, err := migrations.Up(ctx, bdb); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Current(ctx, bdb); err != nil {
		t.Fatalf("Current after Up = %v", err)
	}
	// Up again is a no-op.
	if g, err := migrations.Up(ctx, bdb); err != nil || !g.IsZero() {
		t.Fatalf("second Up = %v, %v; want empty group", g, err)
	}
	if _, err := migrations.Rollback(ctx, bdb); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Current(ctx, bdb); !errors.Is(err, migrations.ErrSchemaOutdated) {
		t.Fatalf("Current after Rollback = %v, want ErrSchemaOutdated", err)
	}
	if _, err := migrations.Up(ctx, bdb); err != nil {
		t.Fatalf("Up after Rollback: %v", err)
	}
	st, err := migrations.Status(ctx, bdb)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Unapplied()) != 0 {
		t.Fatalf("unapplied after Up: %v", st.Unapplied())
	}
}

func TestOpenMigrated(t *testing.T) {
	ctx := context.Background()
	bdb, err := migrations.OpenMigrated(ctx, testenv.PostgresURL(t), db.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bdb.Close() })
	if err := migrations.Current(ctx, bdb); err != nil {
		t.Errorf("Current after OpenMigrated = %v", err)
	}
	if _, err := migrations.OpenMigrated(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable", db.Options{}); err == nil {
		t.Error("OpenMigrated on an unreachable server succeeded")
	}
}
