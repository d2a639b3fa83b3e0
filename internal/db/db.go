// Package db opens paystream's Postgres connection as a Bun database and
// holds what paystream knows about Postgres errors (errors.go).
package db

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// Options size the connection pool.
type Options struct {
	MaxOpenConns    int           // default 10
	ConnMaxLifetime time.Duration // default 30m
}

// Open connects to dsn (postgres://…) through pgx and returns a Bun DB. It
// pings once so a wrong URL fails at start-up with a clear message.
func Open(ctx context.Context, dsn string, o Options) (*bun.DB, error) {
	if o.MaxOpenConns <= 0 {
		o.MaxOpenConns = 10
	}
	if o.ConnMaxLifetime <= 0 {
		o.ConnMaxLifetime = 30 * time.Minute
	}
	cfg, err := pgconnConfig(dsn)
	if err != nil {
		return nil, err
	}
	sqldb := stdlib.OpenDB(*cfg)
	sqldb.SetMaxOpenConns(o.MaxOpenConns)
	sqldb.SetMaxIdleConns(o.MaxOpenConns)
	sqldb.SetConnMaxLifetime(o.ConnMaxLifetime)
	bdb := bun.NewDB(sqldb, pgdialect.New())
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := bdb.PingContext(pctx); err != nil {
		_ = bdb.Close()
		return nil, fmt.Errorf("connect to postgres at %s: %w", Redact(dsn), err)
	}
	return bdb, nil
}

// Redact hides the password of a database URL for logs and errors.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "<unparseable database url>"
	}
	return u.Redacted()
}

func pgconnConfig(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL %s: %w", Redact(dsn), err)
	}
	// Bun formats every argument into the SQL text, so no two statements are
	// alike: pgx's default mode (prepare and cache each new statement) costs
	// a second round trip per query and fills the server with one-off plans.
	// The exec mode sends an unnamed statement in one round trip. A DSN that
	// sets default_query_exec_mode itself keeps its choice.
	if u, err := url.Parse(dsn); err != nil || !u.Query().Has("default_query_exec_mode") {
		cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	}
	return cfg, nil
}
