package loadgen

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/devenv"
)

// scratchDatabase is ScratchDatabase whose drop is a no-op when keep is set,
// for a bench's KeepDB.
func scratchDatabase(ctx context.Context, serverURL string, keep bool) (string, func(), error) {
	dsn, drop, err := ScratchDatabase(ctx, serverURL)
	if err != nil || !keep {
		return dsn, drop, err
	}
	return dsn, func() {}, nil
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
