// Command api is the purchase API: it creates Stripe Checkout Sessions for
// catalog content, answers access checks and lists purchases, on its own
// listener (API_ADDR), never on the edge's webhook port. Configuration is the
// environment (see README.md); docs/api.md describes the routes.
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
	"github.com/paystream/paystream/internal/app/apiservice"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/apiconfig"
	"github.com/paystream/paystream/internal/obs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}

// errArgs: everything is configured through the environment.
var errArgs = errors.New("api takes no arguments; it is configured through the environment (see README.md)")

// run reads the environment (failing before it connects to anything), then
// runs the API service (internal/app: pool, schema check, listeners) until
// ctx ends.
func run(ctx context.Context, args []string, getenv config.Getenv, _, stderr io.Writer) error {
	return runWith(ctx, args, getenv, stderr, nil)
}

// runWith is run; ready, when the caller is a test, learns the bound
// addresses.
func runWith(ctx context.Context, args []string, getenv config.Getenv, stderr io.Writer, ready func(app.Listeners)) error {
	if len(args) > 0 {
		return errArgs
	}
	cfg, err := apiconfig.Parse(getenv)
	if err != nil {
		return err
	}
	log := obs.NewLogger(stderr, cfg.LogLevel, "api")
	var opts []app.Option
	if ready != nil {
		opts = append(opts, app.WithReady(func(a app.Addrs) { ready(a.API) }))
	}
	a, err := app.New([]app.Service{apiservice.New(cfg)}, log, opts...)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
