package devenv_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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
	requirePostgresBinaries(t)
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

// tiedHelperDir, set, makes the test binary a helper process that starts a
// tied cluster there, prints the server's pid and waits to be killed.
const tiedHelperDir = "PAYSTREAM_TIED_CLUSTER_HELPER_DIR"

// A tied cluster stops when the process that started it is SIGKILLed: the
// kernel's parent-death signal, not a deferred call, stops it. A second
// start in the same directory (the next owner) works.
func TestTiedClusterStopsWithItsProcess(t *testing.T) {
	if dir := os.Getenv(tiedHelperDir); dir != "" {
		pg, err := devenv.StartTiedCluster(context.Background(), dir, slog.New(slog.DiscardHandler))
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("ready", postmasterPID(t, dir), pg.URL)
		select {} // until killed
	}
	requirePostgresBinaries(t)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestTiedClusterStopsWithItsProcess$")
	cmd.Env = append(os.Environ(), tiedHelperDir+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 3 || f[0] != "ready" {
		_ = cmd.Process.Kill()
		t.Fatalf("helper: %q, %v", line, err)
	}
	pid, _ := strconv.Atoi(f[1])
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGQUIT) }) // should the test fail: leave nothing running
	c, err := pgx.Connect(context.Background(), f[2])
	if err != nil {
		t.Fatalf("connect to the tied cluster: %v", err)
	}
	_ = c.Close(context.Background())

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	testenv.Eventually(t, 30*time.Second, "the orphaned postgres to stop", func() bool {
		return syscall.Kill(pid, 0) != nil
	})

	pg, err := devenv.StartTiedCluster(context.Background(), dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("second start in the same directory: %v", err)
	}
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
}

// postmasterPID reads the server's pid from the cluster in dir.
func postmasterPID(t *testing.T, dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(first)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// requirePostgresBinaries skips a test that starts its own cluster where
// Postgres's binaries are not installed, or under -short.
func requirePostgresBinaries(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("initdb"); err != nil {
		if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) == 0 {
			t.Skip("postgres binaries not installed")
		}
	}
	if testing.Short() {
		t.Skip("starts a postgres cluster")
	}
}
