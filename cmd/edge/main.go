// Command edge is paystream's Stripe webhook receiver: it verifies each
// webhook's signature, stores the event in JetStream and answers 200 only once
// JetStream acknowledged it. Configuration is environment variables (see
// docs/edge.md); main only wires.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/paystream/paystream/internal/app"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/obs"
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

// run is the whole program: read the environment, then run the edge
// service (internal/app) until ctx ends. Logs go to stderr as JSON; stdout
// is unused and kept for symmetry with the other binaries.
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
	a, err := app.New([]app.Service{app.Edge(cfg)}, log)
	if err != nil {
		return err
	}
	if err := a.Run(ctx); err != nil {
		return err
	}
	log.Info("exit")
	return nil
}
