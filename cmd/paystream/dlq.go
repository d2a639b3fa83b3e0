package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/streams"
)

// dlqCommand is one `paystream dlq` subcommand.
type dlqCommand struct {
	usage string                                                         // its lines of the dlq help
	flags func(fs *flag.FlagSet, o *dlqOptions)                          // binds its flags to o
	check func(o *dlqOptions) error                                      // validates arguments and flags before anything connects
	run   func(o *dlqOptions, ctx context.Context, d *streams.DLQ) error // acts and prints (a method of dlqOptions)
}

// dlqCommands is the table of dlq subcommands.
func dlqCommands() map[string]dlqCommand {
	return map[string]dlqCommand{
		"list": {
			usage: `list [--limit 50] [--from SEQ] [--json]
        dead letters, oldest first: sequence, age, reason, deliveries, event type and id, last error`,
			flags: func(fs *flag.FlagSet, o *dlqOptions) {
				fs.IntVar(&o.limit, "limit", 50, "show at most N dead letters")
				fs.Uint64Var(&o.from, "from", 1, "start at this STRIPE_DLQ sequence")
				fs.BoolVar(&o.asJSON, "json", false, "print JSON")
			},
			check: func(o *dlqOptions) error {
				if len(o.seqs) > 0 {
					return errors.New("takes no arguments; use --from")
				}
				if o.limit < 1 {
					return errors.New("--limit must be at least 1")
				}
				return nil
			},
			run: (*dlqOptions).list,
		},
		"show": {
			usage: `show <seq> [--json]
        one dead letter: every header and the original event body, pretty-printed`,
			flags: func(fs *flag.FlagSet, o *dlqOptions) { fs.BoolVar(&o.asJSON, "json", false, "print JSON") },
			check: func(o *dlqOptions) error {
				if len(o.seqs) != 1 {
					return errors.New("needs exactly one sequence")
				}
				return nil
			},
			run: (*dlqOptions).show,
		},
		"replay": {
			usage: `replay <seq>... | --all [--reason R] [--dry-run] [--keep]
        republish the original event to STRIPE_EVENTS under a new Nats-Msg-Id
        (<event id>-replay-<seq>-<unix time>, so the broker's dedup window does not
        drop it; the processor's idempotency still applies it at most once), then
        remove the dead letter so the DLQ depth (and PaystreamDLQNotEmpty) falls.
        --keep leaves it; --dry-run only prints what would be republished.
        An event that fails again comes back as a new dead letter with the new reason.`,
			flags: func(fs *flag.FlagSet, o *dlqOptions) {
				fs.BoolVar(&o.all, "all", false, "every dead letter stored now")
				fs.StringVar(&o.reason, "reason", "", "with --all: only dead letters with this reason")
				fs.BoolVar(&o.dryRun, "dry-run", false, "print what would be replayed, publish nothing")
				fs.BoolVar(&o.keep, "keep", false, "keep the dead letter after a successful replay")
			},
			check: (*dlqOptions).checkTargets,
			run:   (*dlqOptions).replay,
		},
		"purge": {
			usage: `purge <seq>... | --all --yes [--reason R]
        delete dead letters for good (events that must never be applied);
        --all needs --yes`,
			flags: func(fs *flag.FlagSet, o *dlqOptions) {
				fs.BoolVar(&o.all, "all", false, "every dead letter stored now")
				fs.BoolVar(&o.yes, "yes", false, "confirm --all")
				fs.StringVar(&o.reason, "reason", "", "with --all: only dead letters with this reason")
			},
			check: func(o *dlqOptions) error {
				if err := o.checkTargets(); err != nil {
					return err
				}
				if o.all && !o.yes {
					return errors.New("--all deletes dead letters for good; add --yes")
				}
				return nil
			},
			run: (*dlqOptions).purge,
		},
	}
}

// dlqUsage writes the help of `paystream dlq`, the subcommands in
// alphabetical order.
func dlqUsage(w io.Writer, cmds map[string]dlqCommand) {
	fmt.Fprintln(w, "usage: paystream dlq <subcommand> [flags]")
	for _, name := range slices.Sorted(maps.Keys(cmds)) {
		fmt.Fprintf(w, "\n  %s\n", cmds[name].usage)
	}
	fmt.Fprintln(w, "\nenv: NATS_URL")
}

// dlqOptions are the flags and arguments of a dlq subcommand; each uses its own.
type dlqOptions struct {
	limit          int
	from           uint64
	asJSON         bool
	all, yes       bool
	dryRun, keep   bool
	reason         string
	seqs           []uint64
	subcommand     string
	now            func() time.Time
	stdout, stderr io.Writer
}

func runDLQ(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	cmds := dlqCommands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		dlqUsage(stderr, cmds)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	o := dlqOptions{subcommand: args[0], now: time.Now, stdout: stdout, stderr: stderr}
	c, ok := cmds[o.subcommand]
	if !ok {
		fmt.Fprintf(stderr, "paystream dlq: unknown subcommand %q\n\n", o.subcommand)
		dlqUsage(stderr, cmds)
		return errUsage
	}
	fs := flag.NewFlagSet("dlq "+o.subcommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { dlqUsage(stderr, cmds) }
	c.flags(fs, &o)
	positional, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	err = o.parseSeqs(positional)
	if err == nil {
		err = c.check(&o)
	}
	if err != nil {
		fmt.Fprintf(stderr, "paystream dlq %s: %v\n", o.subcommand, err)
		return errUsage
	}

	p := config.NewParser(getenv)
	common := config.ParseCommon(p)
	if err := p.Err(); err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	// A one-shot command should fail at once on an unreachable broker rather
	// than retry the first connection in the background like the services.
	nc, err := streams.Connect(common.NATSURL, "paystream-dlq", quiet, nats.RetryOnFailedConnect(false))
	if err != nil {
		return fmt.Errorf("dlq: %w", err)
	}
	defer nc.Close()
	js, err := streams.NewJetStream(nc)
	if err != nil {
		return fmt.Errorf("dlq: %w", err)
	}
	return c.run(&o, ctx, streams.NewDLQ(js))
}

// parseInterspersed parses flags that may come before, between or after the
// positional arguments (`replay 5 --dry-run` as well as `replay --dry-run 5`);
// the flag package alone stops at the first positional argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// parseSeqs reads the positional arguments as dead-letter sequences.
func (o *dlqOptions) parseSeqs(positional []string) error {
	for _, a := range positional {
		seq, err := strconv.ParseUint(a, 10, 64)
		if err != nil || seq == 0 {
			return fmt.Errorf("%q is not a dead-letter sequence (a positive number, see paystream dlq list)", a)
		}
		o.seqs = append(o.seqs, seq)
	}
	return nil
}

// checkTargets checks how a replay or purge names its dead letters.
func (o *dlqOptions) checkTargets() error {
	switch {
	case o.all && len(o.seqs) > 0:
		return errors.New("give sequences or --all, not both")
	case !o.all && len(o.seqs) == 0:
		return errors.New("needs sequences or --all")
	case o.reason != "" && !o.all:
		return errors.New("--reason filters --all")
	}
	return nil
}
