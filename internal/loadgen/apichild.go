package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/app"
	"github.com/paystream/paystream/internal/app/apiservice"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/apiconfig"
)

// The API bench runs the purchase API in a process of its own, so the API's
// CPU time (from /proc/<pid>/stat) and the load client's (this process) are
// measured apart: in one process the client's work showed up as API
// throughput the API never lost. The child is this same executable started
// with APIChildEnv set; it reads its settings from these variables.
const (
	// APIChildEnv marks a process started by RunAPIBench as its API
	// (ServeAPIChild). cmd/paystream serves it as the hidden `bench
	// api-server`; a test binary that runs the bench checks it in TestMain.
	APIChildEnv = "PAYSTREAM_BENCH_API_CHILD"
	// apiChildConnsEnv is the API's pool size.
	apiChildConnsEnv = "PAYSTREAM_BENCH_API_CONNS"
	// apiChildProfileEnv names a file for the API's CPU profile ("" = none).
	apiChildProfileEnv = "PAYSTREAM_BENCH_API_CPUPROFILE"
	// apiChildReady starts the line the child prints once it listens,
	// followed by its public address, apiChildAdmin and its admin address.
	apiChildReady = "paystream-bench-api listening on "
	apiChildAdmin = " admin "
)

// ServeAPIChild is the API process of RunAPIBench: the purchase API started
// through the composition package (apiservice, as cmd/api starts it) on
// 127.0.0.1:0 with the bench's key and no rate limit, on DATABASE_URL with
// a pool of PAYSTREAM_BENCH_API_CONNS, API_ACCESS_WORKERS and
// API_ACCESS_BATCH as the bench set them. It prints its address on stdout once
// it listens and serves until ctx ends or stdin reaches its end (the parent
// closed it, or died). With PAYSTREAM_BENCH_API_CPUPROFILE set it writes
// its CPU profile there on the way out.
func ServeAPIChild(ctx context.Context, getenv config.Getenv, stdin io.Reader, stdout, stderr io.Writer) error {
	dsn := getenv("DATABASE_URL")
	conns, err := strconv.Atoi(getenv(apiChildConnsEnv))
	if dsn == "" || err != nil || conns < 1 {
		return fmt.Errorf("bench api-server: started by `paystream bench api` only (DATABASE_URL %q, %s %q)",
			dsn, apiChildConnsEnv, getenv(apiChildConnsEnv))
	}
	p := config.NewParser(getenv)
	workers := p.Int("API_ACCESS_WORKERS", api.DefaultAccessWorkers, 1, api.MaxAccessWorkers)
	batch := p.Int("API_ACCESS_BATCH", api.DefaultAccessBatch, 1, api.MaxAccessBatch)
	if err := p.Err(); err != nil {
		return fmt.Errorf("bench api-server: %w", err)
	}
	if path := getenv(apiChildProfileEnv); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("bench api-server: cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return fmt.Errorf("bench api-server: cpu profile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		cancel()
	}()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	g, err := startApp(ctx, []app.Service{apiservice.New(apiconfig.Config{
		Common:     config.Common{DatabaseURL: dsn},
		DBMaxConns: conns,
		GCPercent:  apiconfig.GCPercent(p),
		Config: api.Config{Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Keys: []string{apiBenchKey},
			StripeSecretKey: "sk_test_bench_unused", RateLimit: 0, AccessWorkers: workers, AccessBatch: batch},
	})}, log)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(stdout, apiChildReady+g.addrs.API.Public+apiChildAdmin+g.addrs.API.Admin); err != nil {
		_ = g.stop()
		return err
	}
	<-ctx.Done()
	return g.stop()
}

// apiChild is a running API process of the bench.
type apiChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string // its public listener, host:port
	admin string // its admin listener (/metrics), host:port
	done  chan error
	log   *tailBuffer
	once  sync.Once
	err   error
}

// startAPIChild starts argv as the bench's API on dsn with a pool of conns
// and returns once it listens. Its log goes to logw and is kept for errors.
func startAPIChild(ctx context.Context, argv []string, dsn string, conns int, cpuprofile string, logw io.Writer, env ...string) (*apiChild, error) {
	if len(argv) == 0 {
		return nil, errors.New("loadgen: api bench: no command for the API process")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), APIChildEnv+"=1", "DATABASE_URL="+dsn,
		apiChildConnsEnv+"="+strconv.Itoa(conns), apiChildProfileEnv+"="+cpuprofile)
	cmd.Env = append(cmd.Env, env...)
	c := &apiChild{cmd: cmd, done: make(chan error, 1), log: &tailBuffer{}}
	cmd.Stderr = io.MultiWriter(orDiscard(logw), c.log)
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("loadgen: api bench: start the API process: %w", err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), apiChildReady); ok {
				addr <- a
			}
		}
		_, _ = io.Copy(io.Discard, out)
		c.done <- cmd.Wait()
	}()
	select {
	case a := <-addr:
		c.addr, c.admin, _ = strings.Cut(a, apiChildAdmin)
		return c, nil
	case err := <-c.done:
		return nil, fmt.Errorf("loadgen: api bench: the API process ended before it listened (%v): %s", err, c.log)
	case <-ctx.Done():
		_ = c.stop()
		return nil, ctx.Err()
	case <-time.After(2 * time.Minute):
		_ = c.stop()
		return nil, fmt.Errorf("loadgen: api bench: the API process did not listen within 2 minutes: %s", c.log)
	}
}

// pid is the API process's id, for its CPU time from /proc.
func (c *apiChild) pid() int { return c.cmd.Process.Pid }

// stop ends the API (closing its stdin lets it stop cleanly and write its
// profile) and returns how it ended; it kills it after 30 s.
func (c *apiChild) stop() error {
	c.once.Do(func() {
		_ = c.stdin.Close()
		select {
		case c.err = <-c.done:
		case <-time.After(30 * time.Second):
			_ = c.cmd.Process.Kill()
			c.err = <-c.done
		}
		if c.err != nil {
			c.err = fmt.Errorf("loadgen: api bench: the API process: %w: %s", c.err, c.log)
		}
	})
	return c.err
}

// tailBuffer keeps the last 4 KiB written to it, for error messages.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - 4<<10; over > 0 {
		t.b = t.b[over:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.b))
}
