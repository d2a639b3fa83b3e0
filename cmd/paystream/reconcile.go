package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/processorconfig"
	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/internal/reconcile"
)

func runReconcile(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	since := fs.Duration("since", reconcile.DefaultWindow, "recover events created within this window (at most 720h, Stripe's Events API limit)")
	types := fs.String("types", "", "comma-separated subset of the handled event types (default: all of them)")
	dryRun := fs.Bool("dry-run", false, "list and count the events, publish nothing (reads STRIPE_EVENTS if the broker answers)")
	endpoint := fs.String("endpoint", "", "endpoint name the events are published under (default RECONCILE_ENDPOINT, else default)")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object on stdout; progress goes to stderr")
	pageSize := fs.Int("page-size", 100, "events per Stripe API page (1-100)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: paystream reconcile [--since 72h] [--types t1,t2] [--dry-run] [--endpoint default] [--json]")
		fmt.Fprintln(stderr, "Lists events from the Stripe Events API and publishes those paystream missed into STRIPE_EVENTS.")
		fmt.Fprintln(stderr, "Safe to repeat: events already there are dropped by the broker or the processor.")
		fs.PrintDefaults()
		fmt.Fprintln(stderr, "handled types: "+strings.Join(reconcile.HandledTypes(), ", "))
		fmt.Fprintln(stderr, "env: STRIPE_SECRET_KEY (required), STRIPE_API_BASE, STRIPE_MAX_NETWORK_RETRIES, RECONCILE_ENDPOINT,")
		fmt.Fprintln(stderr, "     NATS_URL, STREAM_*, LOG_LEVEL; see docs/reconcile.md")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "paystream reconcile: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}

	p := config.NewParser(getenv)
	common := config.ParseCommon(p)
	rc := processorconfig.ParseReconcile(p, true)
	if err := p.Err(); err != nil {
		return err
	}
	cfg := reconcile.Config{Since: *since, Endpoint: rc.Endpoint, DryRun: *dryRun, PageSize: *pageSize}
	if *endpoint != "" {
		cfg.Endpoint = *endpoint
	}
	if *types != "" {
		for _, t := range strings.Split(*types, ",") {
			if t = strings.TrimSpace(t); t != "" {
				cfg.Types = append(cfg.Types, t)
			}
		}
	}
	log := obs.NewLogger(stderr, common.LogLevel, "paystream-reconcile")

	lister, err := reconcile.NewStripeLister(rc.Stripe(), log)
	if err != nil {
		return err
	}
	broker, err := reconcile.ConnectBroker(ctx, common.NATSURL, common.Streams, cfg.DryRun, log)
	if err != nil {
		return err
	}
	defer broker.Close()
	cfg.Index = broker.Index

	progress := stdout
	if *asJSON {
		progress = stderr
	}
	sum, runErr := reconcile.Run(ctx, cfg, lister, broker.Publisher, progress, log)
	if sum.RunID == "" { // the configuration was refused before the run began
		return runErr
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			return fmt.Errorf("reconcile: write summary: %w", err)
		}
	} else {
		printSummary(stdout, sum)
	}
	return runErr
}

func printSummary(w io.Writer, s reconcile.Summary) {
	fmt.Fprintf(w, "\nreconcile run %s (endpoint %s, events created since %s)\n", s.RunID, s.Endpoint, s.Since.Format(time.RFC3339))
	fmt.Fprintf(w, "  seen             %d\n", s.Seen)
	if s.DryRun {
		fmt.Fprintf(w, "  would publish    %d   (dry run: nothing was published)\n", s.Candidates)
	} else {
		fmt.Fprintf(w, "  published        %d   (missed: now in STRIPE_EVENTS)\n", s.Published)
	}
	fmt.Fprintf(w, "  already present  %d\n", s.AlreadyPresent)
	if s.Indexed < 0 {
		fmt.Fprintln(w, "  (STRIPE_EVENTS could not be read: only the broker's dedup window recognised delivered events)")
	}
	fmt.Fprintf(w, "  skipped          %d\n", s.Skipped)
	fmt.Fprintf(w, "  failed           %d\n", s.Failed)
	fmt.Fprintf(w, "  took             %s\n", s.FinishedAt.Sub(s.StartedAt).Round(time.Millisecond))
	if s.Error != "" {
		fmt.Fprintf(w, "  stopped early:   %s\n  rerun the same command once the cause is fixed; it is idempotent\n", s.Error)
	}
}
