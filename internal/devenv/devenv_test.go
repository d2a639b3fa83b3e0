package devenv_test

import (
	"context"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/paystream/paystream/internal/devenv"
	"github.com/paystream/paystream/internal/testenv"
)

func TestEnsureDatabaseCreatesMissing(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.PostgresURL(t) // exists; derive a sibling name that does not
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + cfg.Database + "_x"
	missing := u.String()
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, testenv.AdminURL())
		if err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database+"_x WITH (FORCE)")
			_ = c.Close(ctx)
		}
	})
	for i := 0; i < 2; i++ { // second call: already there
		if err := devenv.EnsureDatabase(ctx, missing); err != nil {
			t.Fatalf("EnsureDatabase #%d: %v", i+1, err)
		}
	}
}

func TestPrivateClusterStartsAndStops(t *testing.T) {
	if _, err := exec.LookPath("initdb"); err != nil {
		if _, gerr := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); gerr != nil {
			t.Skip("postgres binaries not installed")
		}
	}
	if testing.Short() {
		t.Skip("starts a postgres cluster")
	}
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// No DATABASE_URL and no local URL: the private cluster is the only way.
	pg, err := devenv.FindPostgres(context.Background(), devenv.PostgresOptions{DataDir: dir}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Stop() })
	if pg.Source != "private cluster" {
		t.Fatalf("source = %q", pg.Source)
	}
	c, err := pgx.Connect(context.Background(), pg.URL)
	if err != nil {
		t.Fatalf("connect to private cluster: %v", err)
	}
	var one int
	if err := c.QueryRow(context.Background(), "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("select 1 = %d, %v", one, err)
	}
	_ = c.Close(context.Background())
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
}
