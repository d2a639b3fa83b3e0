package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/paystream/paystream/streams"
)

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

func (o *dlqOptions) toJSON(l streams.DeadLetterMsg, full bool) letterJSON {
	j := letterJSON{
		Seq: l.Sequence, Subject: l.Subject, Stored: l.Stored, AgeSeconds: o.now().Sub(l.DeadLetteredAt()).Seconds(),
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
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", l.Sequence, age(o.now().Sub(l.DeadLetteredAt())),
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
	field("dead-lettered", "%s (%s ago)", l.DeadLetteredAt().UTC().Format(time.RFC3339), age(o.now().Sub(l.DeadLetteredAt())))
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
		res, err := d.Redrive(ctx, l.Sequence, o.keep)
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
		switch {
		case res.Purged:
			fmt.Fprintf(o.stdout, "removed dead letter %d\n", l.Sequence)
		case res.PurgeErr != nil:
			fmt.Fprintf(o.stdout, "FAILED to remove dead letter %d after its replay (replaying it again is safe): %v\n", l.Sequence, res.PurgeErr)
			failed++
		}
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
