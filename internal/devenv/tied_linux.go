package devenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// tiedStartTimeout bounds a tied cluster's start and stop.
const tiedStartTimeout = 60 * time.Second

// StartTiedCluster starts the private cluster in dir (initialised once) as a
// child of this process that the kernel stops when this process ends, however
// it ends (a parent-death signal asks for Postgres's fast shutdown): nothing
// is left running afterwards. Test binaries need that, since nothing runs at
// their end. The caller must own dir alone while the cluster runs. URL is the
// server's postgres database; Stop stops the cluster earlier.
func StartTiedCluster(ctx context.Context, dir string, log *slog.Logger) (*Postgres, error) {
	c, err := prepareCluster(ctx, dir, log)
	if err != nil {
		return nil, err
	}
	if err := c.clearStaleServer(); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(c.logFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := c.command(context.Background(), "postgres", append([]string{"-D", c.data}, c.serverOptions()...)...)
	cmd.SysProcAttr.Pdeathsig = syscall.SIGINT
	cmd.Stdout, cmd.Stderr = logf, logf
	started, exited := make(chan error, 1), make(chan struct{})
	go func() {
		// The kernel sends the parent-death signal when the thread that
		// started the child ends, not the process: this goroutine keeps
		// its thread for as long as the child lives.
		runtime.LockOSThread()
		defer close(exited)
		defer logf.Close()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	p := &Postgres{URL: c.url("postgres"), Source: "private cluster", stop: func() error {
		return stopChild(cmd, exited)
	}}
	if err := waitReady(ctx, p.URL, exited); err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("private postgres in %s (log %s): %w", c.data, c.logFile(), err)
	}
	return p, nil
}

// waitReady waits until the server at url answers, or its process ended.
func waitReady(ctx context.Context, url string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, tiedStartTimeout)
	defer cancel()
	for {
		err := EnsureDatabase(ctx, url)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("postgres exited during start-up")
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stopChild asks for a fast shutdown and waits for it; an immediate
// shutdown follows when it takes too long.
func stopChild(cmd *exec.Cmd, exited <-chan struct{}) error {
	select {
	case <-exited:
		return nil
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
		return nil
	case <-time.After(tiedStartTimeout):
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		<-exited
		return errors.New("postgres did not stop within 60s; it was shut down immediately")
	}
}

// clearStaleServer deals with the postmaster.pid a previous owner of the
// cluster left: its server may still be shutting down (the kernel signalled
// it when that owner ended), and then this waits for it; a pid file whose
// process is not this cluster's server (the pid was reused) is removed, since
// Postgres would refuse to start beside any live process of that pid.
func (c *cluster) clearStaleServer() error {
	pidFile := filepath.Join(c.data, "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return os.Remove(pidFile)
	}
	if !c.serves(pid) {
		if err := os.Remove(pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGINT)
	deadline := time.Now().Add(tiedStartTimeout)
	for c.serves(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the previous server of %s (pid %d) did not stop within 60s", c.data, pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// serves reports whether pid is a live postgres serving c's data directory.
func (c *cluster) serves(pid int) bool {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
	for i, a := range args {
		if string(a) == "-D" && i+1 < len(args) && string(args[i+1]) == c.data {
			return true
		}
	}
	return false
}
