package loadgen

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/devenv"
	"github.com/paystream/paystream/migrations"
)

// DemoDatabase is a bench's scratch database, migrated and seeded with the
// demo catalog and its agreements (SeedDemo), and a pool on it.
type DemoDatabase struct {
	URL      string   // the scratch database's URL, for the services under test
	DB       *bun.DB  // the pool, for seeding and checking
	Purchase Purchase // what each demo checkout buys, for the SQL baseline
	drop     func()   // nil when the database is kept
}

// OpenDemoDatabase creates a scratch database on serverURL's server
// (ScratchDatabase), migrates it and seeds the demo catalog, with a pool of
// maxConns. Close closes the pool and drops the database unless keep.
func OpenDemoDatabase(ctx context.Context, serverURL string, keep bool, maxConns int) (_ *DemoDatabase, err error) {
	dsn, drop, err := ScratchDatabase(ctx, serverURL)
	if err != nil {
		return nil, err
	}
	d := &DemoDatabase{URL: dsn, drop: drop}
	if keep {
		d.drop = nil
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.DB, err = migrations.OpenMigrated(ctx, dsn, db.Options{MaxOpenConns: maxConns}); err != nil {
		return nil, err
	}
	if d.Purchase, err = SeedDemo(ctx, d.DB); err != nil {
		return nil, err
	}
	return d, nil
}

// Close closes the pool and drops the database, unless it is kept.
func (d *DemoDatabase) Close() {
	if d.DB != nil {
		_ = d.DB.Close()
	}
	if d.drop != nil {
		d.drop()
	}
}

// ScratchDatabase creates paystream_bench_<unix nanos, base 36> on
// serverURL's server and returns its URL and a function that drops it
// (forcing out any session still connected). The database is empty: the
// caller migrates and seeds it.
func ScratchDatabase(ctx context.Context, serverURL string) (dsn string, drop func(), err error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	name := "paystream_bench_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	u.Path = "/" + name
	dsn = u.String()
	if err := devenv.EnsureDatabase(ctx, dsn); err != nil {
		return "", nil, fmt.Errorf("bench: scratch database on %s: %w", db.Redact(serverURL), err)
	}
	drop = func() {
		// Its own deadline: drop runs on the way out, often after ctx ended.
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return
		}
		cfg.Database = "postgres"
		c, err := pgx.ConnectConfig(dctx, cfg)
		if err != nil {
			return
		}
		defer c.Close(dctx)
		_, _ = c.Exec(dctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	}
	return dsn, drop, nil
}
