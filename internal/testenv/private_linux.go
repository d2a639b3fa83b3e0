package testenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paystream/paystream/internal/devenv"
)

// maxSlots bounds the private clusters test binaries run at once (go test
// runs as many binaries in parallel as -p, GOMAXPROCS by default).
const maxSlots = 32

// slotLock holds the lock of this binary's slot until the process ends
// (the kernel releases a flock with its last descriptor); keeping it here
// keeps the garbage collector from closing it.
var slotLock *os.File

// startPrivate starts a private cluster for this test binary in a slot of
// privateBase: a cluster directory that one binary at a time owns (a
// flock), initialised by its first owner and reused by later ones, so runs
// leave no data directories behind and need no initdb after the first. The
// cluster stops with the binary.
func startPrivate() (string, error) {
	base, err := privateBase()
	if err != nil {
		return "", err
	}
	lock, dir, err := acquireSlot(base)
	if err != nil {
		return "", err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := devenv.StartTiedCluster(ctx, dir, log)
	if err != nil {
		_ = lock.Close()
		return "", err
	}
	slotLock = lock
	if err := dropLeftovers(ctx, pg.URL); err != nil {
		return "", fmt.Errorf("private cluster in %s: %w", dir, err)
	}
	fmt.Fprintf(os.Stderr, "testenv: using a private postgres cluster in %s; it stops with this test binary\n", dir)
	return pg.URL, nil
}

// privateBase is the directory of this user's private test clusters, in
// the temp directory (short enough for a unix socket path, traversable by
// the postgres user when tests run as root).
func privateBase() (string, error) {
	base := filepath.Join(os.TempDir(), "paystream-test-pg-"+strconv.Itoa(os.Getuid()))
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", err
	}
	// Another user may have made the name first, to own what we write.
	fi, err := os.Lstat(base)
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Getuid() {
		return "", fmt.Errorf("%s is not a directory of this user", base)
	}
	return base, nil
}

// acquireSlot locks the first free slot of base and returns its lock and
// its cluster directory.
func acquireSlot(base string) (*os.File, string, error) {
	for i := range maxSlots {
		name := filepath.Join(base, "slot-"+strconv.Itoa(i))
		f, err := os.OpenFile(name+".lock", os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, "", err
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, name, nil
		}
		_ = f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, "", fmt.Errorf("lock %s: %w", f.Name(), err)
		}
	}
	return nil, "", fmt.Errorf("all %d private cluster slots in %s are in use", maxSlots, base)
}

// dropLeftovers drops the databases a previous owner of the slot left (its
// cleanups never ran when it was killed): nobody else uses the cluster.
func dropLeftovers(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres'")
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{n}.Sanitize()+" WITH (FORCE)"); err != nil {
			return err
		}
	}
	return nil
}
