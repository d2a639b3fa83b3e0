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
)

// cluster is a private Postgres cluster: a data directory initialised with
// initdb, served on a unix socket only (no TCP port to collide with).
type cluster struct {
	bin  string              // directory of initdb, pg_ctl and postgres
	dir  string              // absolute; holds data/ and postgres.log
	data string              // the data directory
	sock string              // the socket directory (dir, or a short path when dir is long)
	cred *syscall.Credential // the user the binaries run as; nil = this process's
}

// prepareCluster finds Postgres's binaries and initialises the cluster in
// dir unless that was done before.
func prepareCluster(ctx context.Context, dir string, log *slog.Logger) (*cluster, error) {
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
	c := &cluster{bin: bin, dir: abs, data: filepath.Join(abs, "data"), sock: abs, cred: cred}
	if len(c.sock) > 90 { // unix socket paths are limited to ~107 bytes
		c.sock = filepath.Join(os.TempDir(), "paystream-pg-"+strconv.Itoa(os.Getpid()))
		if err := os.MkdirAll(c.sock, 0o700); err != nil {
			return nil, err
		}
		if cred != nil {
			_ = os.Chown(c.sock, int(cred.Uid), int(cred.Gid))
		}
	}
	if _, err := os.Stat(filepath.Join(c.data, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		log.Info("initialising private postgres cluster", "dir", c.data)
		if out, err := c.command(ctx, "initdb", "-D", c.data, "-U", "postgres",
			"--auth=trust", "-E", "UTF8", "--no-instructions").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("initdb: %w: %s", err, out)
		}
	}
	return c, nil
}

// url is the connection URL of database on the cluster's socket.
func (c *cluster) url(database string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Path: "/" + database,
		RawQuery: url.Values{"host": {c.sock}, "port": {"5432"}, "sslmode": {"disable"}}.Encode()}
	return u.String()
}

// logFile is where the server writes its log.
func (c *cluster) logFile() string { return filepath.Join(c.dir, "postgres.log") }

// serverOptions are the postgres settings every start uses: the socket in
// c.sock and no TCP listener.
func (c *cluster) serverOptions() []string {
	return []string{"-c", "listen_addresses=", "-k", c.sock, "-p", "5432"}
}

// startDaemon starts the cluster in the background with pg_ctl (it outlives
// this process until Stop) and ensures the paystream database.
func (c *cluster) startDaemon(ctx context.Context) (*Postgres, error) {
	opts := fmt.Sprintf("-c listen_addresses='' -k %s -p 5432", c.sock)
	if out, err := c.command(ctx, "pg_ctl", "-D", c.data, "-l", c.logFile(),
		"-o", opts, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pg_ctl start (log in %s): %w: %s", c.logFile(), err, out)
	}
	p := &Postgres{URL: c.url("paystream"), Source: "private cluster", stop: func() error {
		out, err := c.command(context.Background(), "pg_ctl", "-D", c.data, "-m", "fast", "-w", "stop").CombinedOutput()
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

// command runs one of the cluster's binaries as c.cred, in its own process
// group: a server it starts must not die with the terminal's signals to
// this process before Stop runs.
func (c *cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if c.cred != nil {
		cmd.SysProcAttr.Credential = c.cred
		cmd.Dir = "/"
	}
	return cmd
}
