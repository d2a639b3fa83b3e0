// Command edge is paystream's Stripe webhook receiver: it verifies each
// webhook's signature, stores the event in JetStream and answers 200 only once
// JetStream acknowledged it. Configuration is environment variables (see
// docs/edge.md); main only wires.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/edge"
	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/streams"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Environ(), os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "edge:", err)
		os.Exit(1)
	}
}

// drainTimeout bounds the final NATS drain (flushing pending publishes).
const drainTimeout = 10 * time.Second

// run is the whole program: read the environment, connect to NATS (in the
// background if the broker is down), serve until ctx ends, then drain NATS.
// Logs go to stderr as JSON; stdout is unused and kept for symmetry with the
// other binaries.
func run(ctx context.Context, args []string, getenv config.Getenv, environ []string, _ /* stdout */, stderr io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("takes no arguments (got %q); configure it with environment variables, see docs/edge.md", args)
	}
	cfg, err := config.ParseEdge(getenv, environ)
	if err != nil {
		return err
	}
	log := obs.NewLogger(stderr, cfg.LogLevel, "edge")
	log.Info("starting", "config", cfg)
	stopTracing, err := obs.SetupTracing(ctx, getenv, "paystream-edge", log)
	if err != nil {
		return err
	}
	defer stopTracing()
	reg := obs.NewRegistry()

	closed := make(chan struct{})
	nc, err := streams.Connect(cfg.NATSURL, "paystream-edge", log, nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		return err
	}
	runErr := edge.Run(ctx, cfg, nc, reg, log, nil)

	// Every handler has returned: flush what is left and close.
	if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		log.Warn("nats drain", "error", err)
		nc.Close()
	}
	select {
	case <-closed:
	case <-time.After(drainTimeout):
		log.Warn("nats drain timed out; closing")
		nc.Close()
	}
	if runErr != nil {
		return runErr
	}
	log.Info("exit")
	return nil
}
