package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/migrations"
)

// DefaultAdminURL is the server tests create their databases on, unless
// PAYSTREAM_TEST_DATABASE_URL says otherwise.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminURL returns the URL of the database tests connect to in order to
// create and drop their own databases.
func AdminURL() string {
	if v := os.Getenv("PAYSTREAM_TEST_DATABASE_URL"); v != "" {
		return v
	}
	return DefaultAdminURL
}

// PostgresURL creates an empty database with a random name and returns its
// URL; the database is dropped at cleanup. When Postgres cannot be reached the
// test is skipped, except under CI=true, where it fails.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	admin := AdminURL()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("postgres at %s unreachable under CI=true: %v", db.Redact(admin), err)
		}
		tb.Skipf("postgres at %s unreachable (set PAYSTREAM_TEST_DATABASE_URL): %v", db.Redact(admin), err)
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
