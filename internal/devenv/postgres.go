package devenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/paystream/paystream/internal/db"
)

// Postgres is the database the dev mode uses and where it came from.
type Postgres struct {
	URL    string // connection URL of the paystream database
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
	return startPrivate(ctx, filepath.Join(o.DataDir, "pg"), log)
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

// startPrivate initialises (once) and starts a cluster in dir, listening only
// on a unix socket in dir.
func startPrivate(ctx context.Context, dir string, log *slog.Logger) (*Postgres, error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", abs, err)
	}
	cred, err := runAs(abs)
	if err != nil {
		return nil, err
	}
	sock := abs
	if len(sock) > 90 { // unix socket paths are limited to ~107 bytes
		sock = filepath.Join(os.TempDir(), "paystream-pg-"+strconv.Itoa(os.Getpid()))
		if err := os.MkdirAll(sock, 0o700); err != nil {
			return nil, err
		}
		if cred != nil {
			_ = os.Chown(sock, int(cred.Uid), int(cred.Gid))
		}
	}
	data := filepath.Join(abs, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		log.Info("initialising private postgres cluster", "dir", data)
		if out, err := command(ctx, cred, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
			"--auth=trust", "-E", "UTF8", "--no-instructions").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("initdb: %w: %s", err, out)
		}
	}
	opts := fmt.Sprintf("-c listen_addresses='' -k %s -p 5432", sock)
	if out, err := command(ctx, cred, filepath.Join(bin, "pg_ctl"), "-D", data, "-l", filepath.Join(abs, "postgres.log"),
		"-o", opts, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pg_ctl start (log in %s): %w: %s", filepath.Join(abs, "postgres.log"), err, out)
	}
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Path: "/paystream",
		RawQuery: url.Values{"host": {sock}, "port": {"5432"}, "sslmode": {"disable"}}.Encode()}
	p := &Postgres{URL: u.String(), Source: "private cluster", stop: func() error {
		out, err := command(context.Background(), cred, filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop").CombinedOutput()
		if err != nil {
			return fmt.Errorf("pg_ctl stop: %w: %s", err, out)
		}
		return nil
	}}
	if err := EnsureDatabase(ctx, p.URL); err != nil {
		_ = p.Stop()
		return nil, err
	}
	return p, nil
}

// postgresBinDir finds initdb and pg_ctl on PATH or in Debian's versioned
// directories.
func postgresBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", ErrNoPostgres
}

func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// runAs returns the credential to run Postgres's binaries with: initdb
// refuses to run as root, so under root they run as the "postgres" user,
// which then owns dir.
func runAs(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root: Postgres refuses to run as root and there is no \"postgres\" user to run it as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	err = filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		return nil, fmt.Errorf("chown %s to postgres: %w", dir, err)
	}
	// The parent directories must be traversable by that user.
	for d := filepath.Dir(dir); d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			_ = os.Chmod(d, fi.Mode().Perm()|0o001)
		}
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func command(ctx context.Context, cred *syscall.Credential, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = "/"
	}
	// pg_ctl start leaves the server running in the background; it must not
	// die with the dev process's terminal signals before Stop runs.
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	return cmd
}
