// Package pipelinetest is the full-stack test harness the pipeline suites
// share (internal/pipeline, its three-node cluster suite, the live check):
// it starts services through internal/app exactly as the binaries do and
// stops them at the end of the test, plays Stripe against the edge, and
// reads the database. The suites' own scenarios stay in their tests.
package pipelinetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/app"
	"github.com/paystream/paystream/internal/edge"
	"github.com/paystream/paystream/internal/stripefixture"
)

// Logger discards logs unless PAYSTREAM_TEST_LOG is set, then writes every
// line to t's log at debug level, so a failing run can be replayed with
// every component's log lines.
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv("PAYSTREAM_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// ErrNotStopped is Stop's error when the services did not stop in time.
var ErrNotStopped = errors.New("did not stop")

// Running is a paystream started with Start.
type Running struct {
	// Addrs are the bound listener addresses.
	Addrs app.Addrs

	name     string
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
	stopErr  error
}

// Start runs services through app.App, as the binaries do, and returns once
// every one of them listens (and consumes); name labels its failures. At
// the end of the test it stops them (at most 30 s) and hands what Run
// returned to check; a nil check fails the test on any error.
func Start(t testing.TB, name string, log *slog.Logger, services []app.Service, check func(error), opts ...app.Option) *Running {
	t.Helper()
	ready := make(chan app.Addrs, 1)
	a, err := app.New(services, log, append(opts, app.WithReady(func(addrs app.Addrs) { ready <- addrs }))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{name: name, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	if check == nil {
		check = func(err error) {
			if err != nil {
				t.Errorf("%s stopped with: %v", name, err)
			}
		}
	}
	t.Cleanup(func() {
		switch err := r.Stop(30 * time.Second); {
		case errors.Is(err, ErrNotStopped):
			t.Error(err)
		default:
			check(err)
		}
	})
	select {
	case r.Addrs = <-ready:
	case err := <-r.done:
		r.done <- err // for Stop at cleanup
		t.Fatalf("%s: %v", name, err)
	case <-time.After(60 * time.Second):
		t.Fatalf("%s not listening after 60s", name)
	}
	return r
}

// Stop stops the services gracefully, as SIGTERM does, and returns what
// app.App.Run returned, or ErrNotStopped after within; later calls return
// the same.
func (r *Running) Stop(within time.Duration) error {
	r.stopOnce.Do(func() {
		r.cancel()
		select {
		case r.stopErr = <-r.done:
		case <-time.After(within):
			r.stopErr = fmt.Errorf("%s: %w %s after cancel", r.name, ErrNotStopped, within)
		}
	})
	return r.stopErr
}

// Webhooks plays Stripe against an edge: it signs each body with the
// endpoint's secret and posts it to the default endpoint.
type Webhooks struct {
	URL    string       // the edge's base URL, http://host:port
	Secret string       // the endpoint's signing secret
	Client *http.Client // nil: http.DefaultClient
}

// Post signs body and posts it; it returns the edge's status.
func (w Webhooks) Post(body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, w.URL+edge.RoutePrefix, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Stripe-Signature", stripefixture.Sign(body, w.Secret, time.Now()))
	req.Header.Set("Content-Type", "application/json")
	c := w.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// Count counts the rows of table matching where. It retries briefly,
// because fault tests cut the test's own connections too.
func Count(t testing.TB, db bun.IDB, table, where string, args ...any) int {
	t.Helper()
	var err error
	for range 20 {
		var n int64
		n, err = db.NewSelect().Table(table).Where(where, args...).Count(context.Background())
		if err == nil {
			return int(n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("count %s where %s: %v", table, where, err)
	return 0
}
