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

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/migrations"
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

// run reads the environment (failing before it connects to anything), opens
// the database, checks its schema is current, then serves until ctx ends.
// ready, when the caller is a test, learns the bound addresses.
func run(ctx context.Context, args []string, getenv config.Getenv, _, stderr io.Writer) error {
	return runWith(ctx, args, getenv, stderr, nil)
}

func runWith(ctx context.Context, args []string, getenv config.Getenv, stderr io.Writer, ready func(api.Addrs)) error {
	if len(args) > 0 {
		return errArgs
	}
	cfg, err := config.ParseAPI(getenv)
	if err != nil {
		return err
	}
	log := obs.NewLogger(stderr, cfg.LogLevel, "api")
	bdb, err := db.Open(ctx, cfg.DatabaseURL, db.Options{MaxOpenConns: cfg.DBMaxConns})
	if err != nil {
		return err
	}
	defer bdb.Close()
	if err := migrations.Current(ctx, bdb); err != nil {
		return err
	}
	reg := obs.NewRegistry()
	srv, err := api.New(bdb, cfg.API, reg, log)
	if err != nil {
		return err
	}
	return srv.Run(ctx, reg, ready)
}
