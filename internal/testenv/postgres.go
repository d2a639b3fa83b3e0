package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/devenv"
	"github.com/paystream/paystream/migrations"
)

// DefaultAdminURL is the server tests create their databases on, unless
// PAYSTREAM_TEST_DATABASE_URL says otherwise.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// EnvServerURL names the variable that points the tests at a Postgres
// server: a URL of a database on it (they create their own beside it), or
// PrivateServer.
const EnvServerURL = "PAYSTREAM_TEST_DATABASE_URL"

// PrivateServer as EnvServerURL's value asks for a private cluster even when
// a server answers at DefaultAdminURL.
const PrivateServer = "private"

// pgServer is the Postgres server this test binary creates its databases on,
// found on first use and kept for the binary's life: a test binary has no
// hook at its end, which is also why a private cluster it starts is tied to
// its process (devenv.StartTiedCluster).
var pgServer struct {
	once sync.Once
	url  string
	err  error
}

// ServerURL returns the URL of the Postgres server the tests create their
// databases on: the one EnvServerURL names, else the one at DefaultAdminURL,
// else a private cluster started for this test binary when Postgres's
// binaries are installed (it stops with the binary). Without any, tb fails
// with one line saying what is missing; only under -short (and not under
// CI=true) is the test skipped instead, and -short starts no cluster.
func ServerURL(tb testing.TB) string {
	tb.Helper()
	u, err := findServer()
	if err == nil {
		return u
	}
	if testing.Short() && os.Getenv("CI") != "true" {
		tb.Skipf("-short: %v", err)
	}
	tb.Fatal(err.Error())
	return ""
}

// AdminURL is ServerURL for code without a testing.TB: the server once
// found, else the configured URL, whose connection then fails with its own
// error.
func AdminURL() string {
	if u, err := findServer(); err == nil {
		return u
	}
	if v := os.Getenv(EnvServerURL); v != "" && v != PrivateServer {
		return v
	}
	return DefaultAdminURL
}

// findServer finds the server once per test binary.
func findServer() (string, error) {
	pgServer.once.Do(func() {
		start := startPrivate
		if testing.Short() && os.Getenv("CI") != "true" {
			start = nil
		}
		pgServer.url, pgServer.err = locate(os.Getenv, ping, start)
	})
	return pgServer.url, pgServer.err
}

// locate applies ServerURL's order: EnvServerURL, DefaultAdminURL, then
// start (nil: none may be started). Its errors are one line each.
func locate(getenv func(string) string, ping func(string) error, start func() (string, error)) (string, error) {
	v := getenv(EnvServerURL)
	if v != "" && v != PrivateServer {
		if err := ping(v); err != nil {
			return "", oneLine("postgres at %s=%s does not answer: %v", EnvServerURL, db.Redact(v), err)
		}
		return v, nil
	}
	why := EnvServerURL + "=" + PrivateServer
	if v == "" {
		err := ping(DefaultAdminURL)
		if err == nil {
			return DefaultAdminURL, nil
		}
		why = fmt.Sprintf("nothing answers at %s (%v)", db.Redact(DefaultAdminURL), err)
	}
	if start == nil {
		return "", oneLine("no postgres for the tests: %s, and -short starts no private cluster", why)
	}
	u, err := start()
	switch {
	case errors.Is(err, devenv.ErrNoPostgres):
		return "", oneLine("no postgres for the tests: %s, and Postgres's binaries (initdb, postgres) are not installed "+
			"to start a private cluster; start a server, set %s, install them (Debian: apt-get install postgresql), "+
			"or run go test -short to skip the tests that need it", why, EnvServerURL)
	case err != nil:
		return "", oneLine("no postgres for the tests: %s, and the private cluster did not start: %v", why, err)
	}
	return u, nil
}

// oneLine formats an error on a single line (initdb's output, for one, has
// several).
func oneLine(format string, args ...any) error {
	return errors.New(strings.Join(strings.Fields(fmt.Sprintf(format, args...)), " "))
}

// ping connects to url once.
func ping(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// PostgresURL creates an empty database with a random name on ServerURL's
// server and returns its URL; the database is dropped at cleanup.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	admin := ServerURL(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("postgres at %s: %v", db.Redact(admin), err)
	}
	defer conn.Close(context.Background())
	name := "paystream_test_" + randHex(6)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Logf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// DB opens a fresh, fully migrated database, closed at cleanup.
func DB(tb testing.TB) (*bun.DB, string) {
	tb.Helper()
	dsn := PostgresURL(tb)
	bdb, err := migrations.OpenMigrated(context.Background(), dsn, db.Options{MaxOpenConns: 10})
	if err != nil {
		tb.Fatalf("open and migrate test database: %v", err)
	}
	tb.Cleanup(func() { _ = bdb.Close() })
	return bdb, dsn
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // cannot happen on Linux
	}
	return hex.EncodeToString(b)
}
