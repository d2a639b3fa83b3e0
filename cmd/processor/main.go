// Command processor is a member of the consumer group that applies Stripe
// events from JetStream to Postgres. Run as many as the load needs; they
// share the durable consumer "processor". Configuration is the environment
// (see README.md); docs/processor.md explains the runtime.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/paystream/paystream/internal/app"
	"github.com/paystream/paystream/internal/app/processorservice"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/processorconfig"
	"github.com/paystream/paystream/internal/obs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "processor:", err)
		os.Exit(1)
	}
}

// errArgs: everything is configured through the environment.
var errArgs = errors.New("processor takes no arguments; it is configured through the environment (see README.md)")

// run reads the environment (failing before it connects to anything), then
// runs the processor group (internal/app) until ctx ends. Logs go to stderr as JSON.
func run(ctx context.Context, args []string, getenv config.Getenv, _, stderr io.Writer) error {
	if len(args) > 0 {
		return errArgs
	}
	cfg, err := processorconfig.Parse(getenv)
	if err != nil {
		return err
	}
	log := obs.NewLogger(stderr, cfg.LogLevel, "processor")
	stopTracing, err := obs.SetupTracing(ctx, getenv, "paystream-processor", log)
	if err != nil {
		return err
	}
	defer stopTracing()
	a, err := app.New(processorservice.New(cfg), log)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
