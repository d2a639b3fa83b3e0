package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/streams"
)

// dlqUsage is the help of `paystream dlq`.
const dlqUsage = `usage: paystream dlq <subcommand> [flags]

  list [--limit 50] [--from SEQ] [--json]
        dead letters, oldest first: sequence, age, reason, deliveries, event type and id, last error
  show <seq> [--json]
        one dead letter: every header and the original event body, pretty-printed
  replay <seq>... | --all [--reason R] [--dry-run] [--keep]
        republish the original event to STRIPE_EVENTS under a new Nats-Msg-Id
        (<event id>-replay-<seq>-<unix time>, so the broker's dedup window does not
        drop it; the processor's idempotency still applies it at most once), then
        remove the dead letter so the DLQ depth (and PaystreamDLQNotEmpty) falls.
        --keep leaves it; --dry-run only prints what would be republished.
        An event that fails again comes back as a new dead letter with the new reason.
  purge <seq>... | --all --yes [--reason R]
        delete dead letters for good (events that must never be applied);
        --all needs --yes

env: NATS_URL`

// dlqOptions are the flags of every dlq subcommand; each uses its own.
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
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, dlqUsage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	o := dlqOptions{subcommand: args[0], now: time.Now, stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("dlq "+o.subcommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, dlqUsage) }
	switch o.subcommand {
	case "list":
		fs.IntVar(&o.limit, "limit", 50, "show at most N dead letters")
		fs.Uint64Var(&o.from, "from", 1, "start at this STRIPE_DLQ sequence")
		fs.BoolVar(&o.asJSON, "json", false, "print JSON")
	case "show":
		fs.BoolVar(&o.asJSON, "json", false, "print JSON")
	case "replay":
		fs.BoolVar(&o.all, "all", false, "every dead letter stored now")
		fs.StringVar(&o.reason, "reason", "", "with --all: only dead letters with this reason")
		fs.BoolVar(&o.dryRun, "dry-run", false, "print what would be replayed, publish nothing")
		fs.BoolVar(&o.keep, "keep", false, "keep the dead letter after a successful replay")
	case "purge":
		fs.BoolVar(&o.all, "all", false, "every dead letter stored now")
		fs.BoolVar(&o.yes, "yes", false, "confirm --all")
		fs.StringVar(&o.reason, "reason", "", "with --all: only dead letters with this reason")
	default:
		fmt.Fprintf(stderr, "paystream dlq: unknown subcommand %q\n\n%s\n", o.subcommand, dlqUsage)
		return errUsage
	}
	positional, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if err := o.validate(positional); err != nil {
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
	d := streams.NewDLQ(js)
	switch o.subcommand {
	case "list":
		return o.list(ctx, d)
	case "show":
		return o.show(ctx, d)
	case "replay":
		return o.replay(ctx, d)
	default:
		return o.purge(ctx, d)
	}
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

// validate checks the positional arguments and flag combinations before
// anything connects.
func (o *dlqOptions) validate(positional []string) error {
	for _, a := range positional {
		seq, err := strconv.ParseUint(a, 10, 64)
		if err != nil || seq == 0 {
			return fmt.Errorf("%q is not a dead-letter sequence (a positive number, see paystream dlq list)", a)
		}
		o.seqs = append(o.seqs, seq)
	}
	switch o.subcommand {
	case "list":
		if len(o.seqs) > 0 {
			return errors.New("takes no arguments; use --from")
		}
		if o.limit < 1 {
			return errors.New("--limit must be at least 1")
		}
	case "show":
		if len(o.seqs) != 1 {
			return errors.New("needs exactly one sequence")
		}
	case "replay", "purge":
		switch {
		case o.all && len(o.seqs) > 0:
			return errors.New("give sequences or --all, not both")
		case !o.all && len(o.seqs) == 0:
			return errors.New("needs sequences or --all")
		case o.reason != "" && !o.all:
			return errors.New("--reason filters --all")
		case o.subcommand == "purge" && o.all && !o.yes:
			return errors.New("--all deletes dead letters for good; add --yes")
		}
	}
	return nil
}

// letterJSON is a dead letter as `list --json` and `show --json` print it.
type letterJSON struct {
	Seq             uint64          `json:"seq"`
	Subject         string          `json:"subject"`
	Stored          time.Time       `json:"stored"`
	DeadLetteredAt  *time.Time      `json:"dead_lettered_at,omitempty"`
	AgeSeconds      float64         `json:"age_seconds"`
	EventID         string          `json:"event_id"`
	EventType       string          `json:"event_type"`
	Endpoint        string          `json:"endpoint"`
	Reason          string          `json:"reason"`
	Error           string          `json:"error"`
	Deliveries      uint64          `json:"deliveries"`
	OriginalSubject string          `json:"original_subject"`
	OriginalSeq     uint64          `json:"original_stream_seq"`
	Headers         nats.Header     `json:"headers,omitempty"`
	Body            json.RawMessage `json:"body,omitempty"`      // the event, when it is JSON
	BodyText        string          `json:"body_text,omitempty"` // the body otherwise
}

// deadLetteredAt is when the processor dead-lettered l; the broker's store
// time when the header is missing or garbled.
func deadLetteredAt(l streams.DeadLetterMsg) time.Time {
	if !l.At.IsZero() {
		return l.At
	}
	return l.Stored
}

func (o *dlqOptions) toJSON(l streams.DeadLetterMsg, full bool) letterJSON {
	j := letterJSON{
		Seq: l.Sequence, Subject: l.Subject, Stored: l.Stored, AgeSeconds: o.now().Sub(deadLetteredAt(l)).Seconds(),
		EventID: l.EventID, EventType: l.EventType, Endpoint: l.Endpoint, Reason: l.Reason, Error: l.Error,
		Deliveries: l.Deliveries, OriginalSubject: l.OriginalSubject, OriginalSeq: l.StreamSeq,
	}
	if !l.At.IsZero() {
		at := l.At
		j.DeadLetteredAt = &at
	}
	if full {
		j.Headers = l.Header
		if json.Valid(l.Data) {
			j.Body = json.RawMessage(l.Data)
		} else {
			j.BodyText = string(l.Data)
		}
	}
	return j
}

func (o *dlqOptions) list(ctx context.Context, d *streams.DLQ) error {
	letters, err := d.List(ctx, o.from, o.limit)
	if err != nil {
		return fmt.Errorf("dlq list: %w", err)
	}
	depth, err := d.Depth(ctx)
	if err != nil {
		return fmt.Errorf("dlq list: %w", err)
	}
	if o.asJSON {
		out := make([]letterJSON, 0, len(letters))
		for _, l := range letters {
			out = append(out, o.toJSON(l, false))
		}
		return writeJSON(o.stdout, out)
	}
	if len(letters) == 0 {
		fmt.Fprintf(o.stdout, "no dead letters from sequence %d (%d in %s)\n", o.from, depth, streams.DLQStream)
		return nil
	}
	tw := tabwriter.NewWriter(o.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tAGE\tREASON\tDELIVERIES\tTYPE\tEVENT ID\tORIGINAL SUBJECT\tLAST ERROR")
	for _, l := range letters {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", l.Sequence, age(o.now().Sub(deadLetteredAt(l))),
			orDash(l.Reason), l.Deliveries, orDash(l.EventType), orDash(l.EventID), orDash(l.OriginalSubject),
			orDash(truncate(l.Error, 80)))
	}
	tw.Flush()
	fmt.Fprintf(o.stdout, "\n%d shown, %d in %s", len(letters), depth, streams.DLQStream)
	if len(letters) == o.limit {
		fmt.Fprintf(o.stdout, "; more: paystream dlq list --from %d", letters[len(letters)-1].Sequence+1)
	}
	fmt.Fprintln(o.stdout)
	return nil
}

func (o *dlqOptions) show(ctx context.Context, d *streams.DLQ) error {
	l, err := d.Get(ctx, o.seqs[0])
	if err != nil {
		return notFoundHint("dlq show", o.seqs[0], err)
	}
	if o.asJSON {
		return writeJSON(o.stdout, o.toJSON(l, true))
	}
	w := o.stdout
	fmt.Fprintf(w, "dead letter %d on %s (%s)\n", l.Sequence, streams.DLQStream, l.Subject)
	field := func(name, format string, args ...any) {
		fmt.Fprintf(w, "  %-15s%s\n", name, fmt.Sprintf(format, args...))
	}
	field("event", "%s %s (endpoint %s)", orDash(l.EventID), orDash(l.EventType), orDash(l.Endpoint))
	field("reason", "%s", orDash(l.Reason))
	field("last error", "%s", orDash(l.Error))
	field("deliveries", "%d", l.Deliveries)
	field("original", "%s, %s seq %d", orDash(l.OriginalSubject), streams.EventsStream, l.StreamSeq)
	field("dead-lettered", "%s (%s ago)", deadLetteredAt(l).UTC().Format(time.RFC3339), age(o.now().Sub(deadLetteredAt(l))))
	fmt.Fprintln(w, "headers:")
	keys := make([]string, 0, len(l.Header))
	for k := range l.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range l.Header[k] {
			fmt.Fprintf(w, "  %s: %s\n", k, v)
		}
	}
	fmt.Fprintln(w, "body:")
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, l.Data, "  ", "  "); err == nil {
		fmt.Fprintf(w, "  %s\n", pretty.Bytes())
	} else {
		// Not JSON (an invalid_payload dead letter): quoted, so control
		// characters cannot mess with the terminal.
		b := l.Data
		if len(b) > 4096 {
			b = b[:4096]
		}
		fmt.Fprintf(w, "  (not JSON, %d bytes) %q\n", len(l.Data), b)
	}
	return nil
}

// targets resolves the dead letters a replay or purge acts on: the given
// sequences, or every dead letter stored when the command started (a replay
// that fails again adds new ones; they are not chased in the same run).
func (o *dlqOptions) targets(ctx context.Context, d *streams.DLQ) ([]streams.DeadLetterMsg, error) {
	if !o.all {
		out := make([]streams.DeadLetterMsg, 0, len(o.seqs))
		for _, seq := range o.seqs {
			l, err := d.Get(ctx, seq)
			if err != nil {
				return nil, notFoundHint("dlq "+o.subcommand, seq, err)
			}
			out = append(out, l)
		}
		return out, nil
	}
	out, err := d.ListAll(ctx, o.reason)
	if err != nil {
		return nil, fmt.Errorf("dlq %s: %w", o.subcommand, err)
	}
	return out, nil
}

func (o *dlqOptions) replay(ctx context.Context, d *streams.DLQ) error {
	letters, err := o.targets(ctx, d)
	if err != nil {
		return err
	}
	if len(letters) == 0 {
		fmt.Fprintln(o.stdout, "nothing to replay")
		return nil
	}
	failed := 0
	for _, l := range letters {
		what := fmt.Sprintf("dead letter %d (%s %s, reason %s)", l.Sequence, orDash(l.EventType), orDash(l.EventID), orDash(l.Reason))
		if o.dryRun {
			if _, err := l.Replayable(); err != nil {
				fmt.Fprintf(o.stdout, "cannot replay %s: %v\n", what, err)
				failed++
				continue
			}
			fmt.Fprintf(o.stdout, "would replay %s to %s\n", what, l.OriginalSubject)
			continue
		}
		res, err := d.Replay(ctx, l.Sequence)
		if err != nil {
			fmt.Fprintf(o.stdout, "FAILED %s: %v\n", what, err)
			failed++
			continue
		}
		note := ""
		if res.Duplicate {
			note = " (already republished within the last second; the broker kept the first)"
		}
		fmt.Fprintf(o.stdout, "replayed %s to %s seq %d%s\n", what, streams.EventsStream, res.Sequence, note)
		if o.keep {
			continue
		}
		// Only after the PubAck: the event is safe on STRIPE_EVENTS, so the
		// dead letter has done its job. Should this delete fail, the letter
		// stays and a second replay is harmless (same event id).
		if err := d.Purge(ctx, l.Sequence); err != nil {
			fmt.Fprintf(o.stdout, "FAILED to remove dead letter %d after its replay (replaying it again is safe): %v\n", l.Sequence, err)
			failed++
			continue
		}
		fmt.Fprintf(o.stdout, "removed dead letter %d\n", l.Sequence)
	}
	if failed > 0 {
		return fmt.Errorf("dlq replay: %d of %d failed", failed, len(letters))
	}
	return nil
}

func (o *dlqOptions) purge(ctx context.Context, d *streams.DLQ) error {
	letters, err := o.targets(ctx, d)
	if err != nil {
		return err
	}
	if len(letters) == 0 {
		fmt.Fprintln(o.stdout, "nothing to purge")
		return nil
	}
	failed := 0
	for _, l := range letters {
		if err := d.Purge(ctx, l.Sequence); err != nil {
			fmt.Fprintf(o.stdout, "FAILED to purge dead letter %d: %v\n", l.Sequence, err)
			failed++
			continue
		}
		fmt.Fprintf(o.stdout, "purged dead letter %d (%s %s, reason %s)\n", l.Sequence, orDash(l.EventType), orDash(l.EventID), orDash(l.Reason))
	}
	if failed > 0 {
		return fmt.Errorf("dlq purge: %d of %d failed", failed, len(letters))
	}
	return nil
}

// notFoundHint turns "no such sequence" into a message that says where to
// look; other errors pass through wrapped.
func notFoundHint(op string, seq uint64, err error) error {
	if errors.Is(err, streams.ErrDeadLetterNotFound) {
		return fmt.Errorf("%s: no dead letter with sequence %d (already replayed or purged? see paystream dlq list): %w", op, seq, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// age renders a duration for a human column: 42s, 5m, 3h, 2d.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(max(d, 0).Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// truncate shortens s to n bytes on a rune boundary, marking the cut, and
// flattens line breaks so one letter stays one table row.
func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
