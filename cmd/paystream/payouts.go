package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/processorconfig"
	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/stripeclient"
	"github.com/paystream/paystream/migrations"
)

// payoutsUsage is the help of `paystream payouts`.
const payoutsUsage = `usage: paystream payouts <subcommand> [flags]

  run [--dry-run] [--payee creator:<id>|organization:<uuid>] [--json]
        release the sales whose hold is over (PAYOUT_HOLD), resume the payouts
        earlier runs left open (same idempotency key, or a new one after the
        backoff), then pay every eligible available balance of at least
        PAYOUT_MINIMUM_CENTS with one Stripe transfer each. Safe to repeat and
        to run beside the processor's periodic job: a payout is paid once.
        --dry-run releases nothing, writes and sends nothing, and lists what
        would be paid now.
  reconcile [--since 72h] [--json]
        list Stripe's transfers created within the window and match them with
        the payouts: missing, extra, amount and reversal differences. Exit 1
        when there is any (docs/payouts.md says what to do).

env: DATABASE_URL, STRIPE_SECRET_KEY (not needed by a dry run), STRIPE_API_BASE,
     STRIPE_MAX_NETWORK_RETRIES, PAYOUT_*, LOG_LEVEL; see docs/payouts.md`

// errDifferences is the exit status of a check that found differences (it
// was printed already).
var errDifferences = errors.New("differences found")

func runPayouts(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, payoutsUsage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	sub := args[0]
	fs := flag.NewFlagSet("payouts "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, payoutsUsage) }
	asJSON := fs.Bool("json", false, "print the result as JSON on stdout")
	var dryRun *bool
	var payee *string
	var since *time.Duration
	switch sub {
	case "run":
		dryRun = fs.Bool("dry-run", false, "list what would be paid; release, write and send nothing")
		payee = fs.String("payee", "", "only this payee: creator:<id> or organization:<uuid>")
	case "reconcile":
		since = fs.Duration("since", payout.DefaultReconcileWindow, "match the transfers created within this window")
	default:
		fmt.Fprintf(stderr, "paystream payouts: unknown subcommand %q\n\n%s\n", sub, payoutsUsage)
		return errUsage
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "paystream payouts %s: unexpected argument %q\n", sub, fs.Arg(0))
		return errUsage
	}
	var only *payout.PayeeRef
	if payee != nil && *payee != "" {
		ref, err := payout.ParsePayeeRef(*payee)
		if err != nil {
			return fmt.Errorf("payouts run: --payee: %w", err)
		}
		only = &ref
	}
	if since != nil && *since <= 0 {
		return fmt.Errorf("payouts reconcile: --since %s must be positive", *since)
	}

	needKey := sub == "reconcile" || !*dryRun
	p := config.NewParser(getenv)
	common := config.ParseCommon(p)
	dsn := p.URL("DATABASE_URL", config.DefaultDatabaseURL, "postgres", "postgresql")
	st := processorconfig.ParseReconcile(p, needKey)
	cfg, hold := processorconfig.ParsePayout(p, st.SecretKey)
	if err := p.Err(); err != nil {
		return err
	}
	log := obs.NewLogger(stderr, common.LogLevel, "paystream-payouts")
	bdb, err := migrations.OpenCurrent(ctx, dsn, db.Options{MaxOpenConns: cfg.Workers + 2})
	if err != nil {
		return fmt.Errorf("payouts: %w (run `paystream migrate` first if the schema is behind)", err)
	}
	defer bdb.Close()
	var stripe *payout.StripeAPI
	if needKey {
		if stripe, err = payout.NewStripe(stripeclient.Config{Key: st.SecretKey, APIBase: st.APIBase, MaxNetworkRetries: st.MaxNetworkRetries}, log); err != nil {
			return err
		}
	}
	if sub == "reconcile" {
		return payoutsReconcile(ctx, bdb, stripe, *since, *asJSON, stdout)
	}
	return payoutsRun(ctx, bdb, stripe, cfg, hold, payout.RunOptions{DryRun: *dryRun, Payee: only}, *asJSON, log, stdout)
}

func payoutsRun(ctx context.Context, bdb *bun.DB, stripe *payout.StripeAPI, cfg payout.Config, hold ledger.Config,
	opts payout.RunOptions, asJSON bool, log *slog.Logger, w io.Writer) error {
	released := 0
	if !opts.DryRun {
		for {
			n, err := ledger.ReleaseDue(ctx, bdb, hold, time.Now(), 1000)
			released += n
			if err != nil {
				return fmt.Errorf("payouts run: release held sales: %w", err)
			}
			if n < 1000 {
				break
			}
		}
	}
	var tr payout.Transfers
	if stripe != nil {
		tr = stripe
	}
	r, err := payout.NewRunner(bdb, tr, cfg, nil, log)
	if err != nil {
		return err
	}
	sum, runErr := r.Run(ctx, opts)
	if sum.RunID == "" {
		return runErr
	}
	if asJSON {
		out := struct {
			Released int `json:"released"`
			payout.Summary
		}{released, sum}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
		return runErr
	}
	if sum.DryRun {
		fmt.Fprintf(w, "payout run %s (dry run: nothing released, written or sent)\n", sum.RunID)
		fmt.Fprintf(w, "  open payouts an actual run would resume  %d\n", sum.Resumed)
		for _, pl := range sum.Planned {
			fmt.Fprintf(w, "  would pay  %-50s %10d %s\n", pl.Payee, pl.AmountCents, pl.Currency)
		}
		fmt.Fprintf(w, "  would pay %d balances; %d below the minimum\n", len(sum.Planned), sum.BelowMin)
		return runErr
	}
	fmt.Fprintf(w, "payout run %s\n", sum.RunID)
	fmt.Fprintf(w, "  released   %d sales whose hold ended\n", released)
	fmt.Fprintf(w, "  resumed    %d open payouts\n", sum.Resumed)
	fmt.Fprintf(w, "  created    %d payouts (%d balances below the minimum)\n", sum.Created, sum.BelowMin)
	fmt.Fprintf(w, "  paid       %d (%d adopted from a transfer found in their group)\n", sum.Paid, sum.Adopted)
	for _, cur := range slices.Sorted(maps.Keys(sum.PaidCents)) {
		fmt.Fprintf(w, "             %d %s\n", sum.PaidCents[cur], cur)
	}
	fmt.Fprintf(w, "  failed     %d (the payee's account refused; money back in available, payee blocked)\n", sum.Failed)
	fmt.Fprintf(w, "  canceled   %d\n", sum.Canceled)
	fmt.Fprintf(w, "  retrying   %d (the next run resumes them)\n", sum.Retrying)
	fmt.Fprintf(w, "  errors     %d\n", sum.Errors)
	fmt.Fprintf(w, "  took       %s\n", sum.FinishedAt.Sub(sum.StartedAt).Round(time.Millisecond))
	return runErr
}

func payoutsReconcile(ctx context.Context, bdb *bun.DB, stripe *payout.StripeAPI, since time.Duration, asJSON bool, w io.Writer) error {
	rep, err := payout.Reconcile(ctx, bdb, stripe, time.Now().Add(-since), nil)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(w, "payouts reconcile: transfers created since %s\n", rep.Since.Format(time.RFC3339))
		fmt.Fprintf(w, "  listed    %d (%d not paystream's)\n  matched   %d\n", rep.Listed, rep.Foreign, rep.Matched)
		fmt.Fprintf(w, "  unsettled %d (payouts still open; the next run settles them with the same key)\n", rep.Unsettled)
		for _, k := range []struct {
			name string
			ds   []payout.Difference
		}{{"missing", rep.Missing}, {"extra", rep.Extra}, {"amount", rep.Amount}, {"reversed", rep.Reversed}} {
			fmt.Fprintf(w, "  %-9s %d\n", k.name, len(k.ds))
			for _, d := range k.ds {
				fmt.Fprintf(w, "    payout %s transfer %s: %s\n", d.PayoutID, d.TransferID, d.Detail)
			}
		}
	}
	if rep.Differences() > 0 {
		return fmt.Errorf("payouts reconcile: %d %w; see docs/payouts.md", rep.Differences(), errDifferences)
	}
	return nil
}
