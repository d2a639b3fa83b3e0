package devenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/paystream/paystream/internal/db"
)

// Postgres is the database the dev mode uses and where it came from.
type Postgres struct {
	URL    string // connection URL: the paystream database (FindPostgres), the server's postgres database (StartTiedCluster)
	Source string // "DATABASE_URL", "local server" or "private cluster"
	stop   func() error
}

// Stop stops a private cluster started by FindPostgres; otherwise it does nothing.
func (p *Postgres) Stop() error {
	if p.stop == nil {
		return nil
	}
	return p.stop()
}

// PostgresOptions say where to look.
type PostgresOptions struct {
	DatabaseURL string // DATABASE_URL when set; used as is (the database is created if missing)
	LocalURL    string // the local server to try next, e.g. postgres://postgres@127.0.0.1:5432/paystream
	DataDir     string // parent of the private cluster directory (pg/)
}

// ErrNoPostgres means no database could be found or started.
var ErrNoPostgres = errors.New("no Postgres available: set DATABASE_URL, start a server on 127.0.0.1:5432, " +
	"or install Postgres's binaries (Debian: apt-get install postgresql) so dev mode can start a private cluster")

// FindPostgres returns, in order: DATABASE_URL (database created if
// missing); the local server if one answers; a private cluster under
// DataDir/pg started with initdb/pg_ctl (stopped by Stop); or ErrNoPostgres.
func FindPostgres(ctx context.Context, o PostgresOptions, log *slog.Logger) (*Postgres, error) {
	if o.DatabaseURL != "" {
		if err := EnsureDatabase(ctx, o.DatabaseURL); err != nil {
			return nil, fmt.Errorf("DATABASE_URL: %w", err)
		}
		return &Postgres{URL: o.DatabaseURL, Source: "DATABASE_URL"}, nil
	}
	if o.LocalURL != "" {
		err := EnsureDatabase(ctx, o.LocalURL)
		if err == nil {
			return &Postgres{URL: o.LocalURL, Source: "local server"}, nil
		}
		log.Info("no usable local postgres; trying a private cluster", "url", db.Redact(o.LocalURL), "error", err)
	}
	c, err := prepareCluster(ctx, filepath.Join(o.DataDir, "pg"), log)
	if err != nil {
		return nil, err
	}
	return c.startDaemon(ctx)
}

// EnsureDatabase connects to dsn and, when its database does not exist,
// creates it through the server's postgres database.
func EnsureDatabase(ctx context.Context, dsn string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		return conn.Close(ctx)
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "3D000" { // invalid_catalog_name
		return fmt.Errorf("connect to %s: %w", db.Redact(dsn), err)
	}
	cfg, perr := pgx.ParseConfig(dsn)
	if perr != nil {
		return perr
	}
	name := cfg.Database
	cfg.Database = "postgres"
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to create database %q: %w", name, err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42P04" { // created concurrently
			return nil
		}
		return fmt.Errorf("create database %q: %w", name, err)
	}
	return nil
}
