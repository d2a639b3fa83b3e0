// Command paystream is the operator CLI: schema migrations, the all-in-one dev
// mode, test events, dead-letter tools and status.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/paystream/paystream/internal/config"
)

// command is one subcommand. run gets the arguments after its name.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error
}

// commands is the table of subcommands; each lives in its own file.
func commands() map[string]command {
	return map[string]command{
		"migrate":   {"apply, inspect or roll back the database schema", runMigrate},
		"health":    {"probe an admin endpoint (container healthchecks)", runHealth},
		"send":      {"sign a realistic Stripe test event and post it to the edge", runSend},
		"status":    {"streams, consumer lag, DLQ depth, outbox backlog, schema version", runStatus},
		"bench":     {"load-test the edge or the pipeline against their baselines", runBench},
		"dev":       {"all-in-one dev mode: embedded NATS, Postgres, migrations, edge and processor", runDev},
		"reconcile": {"recover Stripe events paystream missed (Stripe Events API → STRIPE_EVENTS)", runReconcile},
		"dlq":       {"list, show, replay and purge dead letters (STRIPE_DLQ)", runDLQ},
		"seed":      {"insert demo content and agreements so `send` makes a full purchase", runSeed},
		"payouts":   {"pay creators and organizations (run), match Stripe's transfers (reconcile)", runPayouts},
		"ledger":    {"check the ledger's invariants (verify), post pre-ledger purchases (backfill)", runLedger},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if err != errUsage {
			fmt.Fprintln(os.Stderr, "paystream:", err)
		}
		os.Exit(exitCode(err))
	}
}

// errUsage is returned after usage was printed; the exit code is 2.
var errUsage = fmt.Errorf("usage")

func exitCode(err error) int {
	if err == errUsage {
		return 2
	}
	return 1
}

func run(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "paystream: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return errUsage
	}
	if err := c.run(ctx, args[1:], getenv, stdout, stderr); !errors.Is(err, flag.ErrHelp) {
		return err
	}
	return nil // --help: the command printed its usage
}

// setUsage makes fs print lines, then its flags, when --help is asked or a
// flag is wrong.
func setUsage(fs *flag.FlagSet, w io.Writer, lines ...string) {
	fs.Usage = func() {
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
		fs.PrintDefaults()
	}
}

// parseFlags parses a subcommand's flags. --help returns flag.ErrHelp, which
// run turns into success; a bad flag is a usage error (exit code 2) after
// the flag package printed what was wrong and the usage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return flag.ErrHelp
		}
		return errUsage
	}
	return nil
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: paystream <command> [flags]   (paystream <command> --help for its flags)")
	fmt.Fprintln(w, "\ncommands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nconfiguration comes from the environment; see README.md")
}
