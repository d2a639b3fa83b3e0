package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/migrations"
)

// ledgerUsage is the help of `paystream ledger`.
const ledgerUsage = `usage: paystream ledger <subcommand> [flags]

  verify
        check every invariant of the ledger in one snapshot: each transaction
        sums to zero, each stored balance equals its entries, each purchase's
        postings equal its split minus its refunds and lost dispute, each
        payout's postings match its status. Prints the first difference and
        exits 1 when there is one (docs/ledger.md, docs/runbook.md).
  backfill [--batch 500]
        post the sale, refund and dispute of every paid purchase made before
        the ledger existed. Safe to repeat: purchases with postings are left
        alone.

env: DATABASE_URL`

func runLedger(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, ledgerUsage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	sub := args[0]
	fs := flag.NewFlagSet("ledger "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, ledgerUsage) }
	batch := 0
	switch sub {
	case "verify":
	case "backfill":
		fs.IntVar(&batch, "batch", 500, "purchases per transaction")
	default:
		fmt.Fprintf(stderr, "paystream ledger: unknown subcommand %q\n\n%s\n", sub, ledgerUsage)
		return errUsage
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 || (sub == "backfill" && batch < 1) {
		fmt.Fprintln(stderr, ledgerUsage)
		return errUsage
	}
	p := config.NewParser(getenv)
	dsn := p.URL("DATABASE_URL", config.DefaultDatabaseURL, "postgres", "postgresql")
	if err := p.Err(); err != nil {
		return err
	}
	bdb, err := migrations.OpenCurrent(ctx, dsn, db.Options{MaxOpenConns: 2})
	if err != nil {
		return fmt.Errorf("ledger: %w (run `paystream migrate` first if the schema is behind)", err)
	}
	defer bdb.Close()
	if sub == "backfill" {
		sum, err := ledger.Backfill(ctx, bdb, batch)
		fmt.Fprintf(stdout, "ledger backfill: posted %d purchases (%d with a refund, %d with a dispute)\n",
			sum.Purchases, sum.Refunds, sum.Disputes)
		return err
	}
	diff, err := ledger.Verify(ctx, bdb)
	if err != nil {
		return err
	}
	if diff != nil {
		fmt.Fprintln(stdout, diff.Error())
		return fmt.Errorf("ledger verify: %w", errDifferences)
	}
	fmt.Fprintln(stdout, "ledger verify: ok (every transaction balanced, every balance equal to its entries, every purchase and payout posted as its row says)")
	return nil
}
