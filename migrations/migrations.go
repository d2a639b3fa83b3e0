// Package migrations holds paystream's schema as embedded SQL files run by
// Bun's migrate package. Files are named <timestamp>_<name>.tx.up.sql /
// .tx.down.sql; each runs in its own transaction.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"

	"github.com/paystream/paystream/internal/db"
)

//go:embed *.sql
var files embed.FS

// ErrSchemaOutdated means migrations are pending; run `paystream migrate up`.
var ErrSchemaOutdated = errors.New("database schema is out of date")

// Load returns the embedded migrations.
func Load() (*migrate.Migrations, error) {
	ms := migrate.NewMigrations()
	if err := ms.Discover(files); err != nil {
		return nil, fmt.Errorf("load embedded migrations: %w", err)
	}
	return ms, nil
}

// NewMigrator returns a Bun migrator over the embedded migrations, with its
// tables created.
func NewMigrator(ctx context.Context, db *bun.DB) (*migrate.Migrator, error) {
	ms, err := Load()
	if err != nil {
		return nil, err
	}
	m := migrate.NewMigrator(db, ms)
	if err := m.Init(ctx); err != nil {
		return nil, fmt.Errorf("init migration tables: %w", err)
	}
	return m, nil
}

// Up applies every pending migration under Bun's migration lock. When another
// process holds the lock it waits (up to ctx) and tries again, so several
// processes may call Up at start-up.
func Up(ctx context.Context, db *bun.DB) (*migrate.MigrationGroup, error) {
	m, err := NewMigrator(ctx, db)
	if err != nil {
		return nil, err
	}
	if err := lock(ctx, m); err != nil {
		return nil, err
	}
	defer m.Unlock(context.WithoutCancel(ctx)) //nolint:errcheck // best effort; the lock row is ours
	g, err := m.Migrate(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate up: %w", err)
	}
	return g, nil
}

// OpenMigrated opens dsn with o and applies every pending migration (see
// Up). The caller owns the pool; it is closed when migrating fails.
func OpenMigrated(ctx context.Context, dsn string, o db.Options) (*bun.DB, error) {
	bdb, err := db.Open(ctx, dsn, o)
	if err != nil {
		return nil, err
	}
	if _, err := Up(ctx, bdb); err != nil {
		_ = bdb.Close()
		return nil, err
	}
	return bdb, nil
}

// OpenCurrent opens dsn with o and refuses a schema that is not current
// (see Current): what a service does before it serves from the database.
// The caller owns the pool; it is closed when the schema is outdated.
func OpenCurrent(ctx context.Context, dsn string, o db.Options) (*bun.DB, error) {
	bdb, err := db.Open(ctx, dsn, o)
	if err != nil {
		return nil, err
	}
	if err := Current(ctx, bdb); err != nil {
		_ = bdb.Close()
		return nil, fmt.Errorf("refusing to start: %w", err)
	}
	return bdb, nil
}

// Rollback undoes the last applied group of migrations.
func Rollback(ctx context.Context, db *bun.DB) (*migrate.MigrationGroup, error) {
	m, err := NewMigrator(ctx, db)
	if err != nil {
		return nil, err
	}
	if err := lock(ctx, m); err != nil {
		return nil, err
	}
	defer m.Unlock(context.WithoutCancel(ctx)) //nolint:errcheck // best effort
	g, err := m.Rollback(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate rollback: %w", err)
	}
	return g, nil
}

// Status lists every migration with its applied state.
func Status(ctx context.Context, db *bun.DB) (migrate.MigrationSlice, error) {
	m, err := NewMigrator(ctx, db)
	if err != nil {
		return nil, err
	}
	return m.MigrationsWithStatus(ctx)
}

// Current returns nil when every embedded migration is applied, and an error
// wrapping ErrSchemaOutdated that names the pending ones otherwise. It does not
// create tables, so it is safe on a read-only role.
func Current(ctx context.Context, db *bun.DB) error {
	ms, err := Load()
	if err != nil {
		return err
	}
	var applied []string
	err = db.NewSelect().Table("bun_migrations").Column("name").Scan(ctx, &applied)
	if err != nil {
		return fmt.Errorf("%w: cannot read bun_migrations (%v); run `paystream migrate up`", ErrSchemaOutdated, err)
	}
	have := make(map[string]bool, len(applied))
	for _, n := range applied {
		have[n] = true
	}
	var pending []string
	for _, m := range ms.Sorted() {
		if !have[m.Name] {
			pending = append(pending, m.Name)
		}
	}
	if len(pending) > 0 {
		return fmt.Errorf("%w: %d pending migration(s) %v; run `paystream migrate up`", ErrSchemaOutdated, len(pending), pending)
	}
	return nil
}

// Latest returns the name of the newest embedded migration.
func Latest() (string, error) {
	ms, err := Load()
	if err != nil {
		return "", err
	}
	s := ms.Sorted()
	if len(s) == 0 {
		return "", nil
	}
	return s[len(s)-1].Name, nil
}

func lock(ctx context.Context, m *migrate.Migrator) error {
	for {
		err := m.Lock(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("take migration lock: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
