package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/migrations"
	"github.com/paystream/paystream/streams"
)

// statusReport is what `paystream status` shows, also as --json.
type statusReport struct {
	Streams  []streams.StreamState  `json:"streams"`
	Consumer *streams.ConsumerState `json:"consumer,omitempty"`
	Outbox   *outboxStatus          `json:"outbox,omitempty"`
	Schema   schemaStatus           `json:"schema"`
	Problems []string               `json:"problems,omitempty"`
}

type outboxStatus struct {
	Backlog      int     `json:"backlog"`
	OldestAgeSec float64 `json:"oldest_unpublished_age_seconds"`
}

type schemaStatus struct {
	Current bool   `json:"current"`
	Latest  string `json:"latest_migration"`
	Detail  string `json:"detail,omitempty"`
}

func runStatus(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: paystream status [--json]")
		fmt.Fprintln(stderr, "streams, consumer lag, ack-pending, DLQ depth, outbox backlog and schema version in one screen")
		fmt.Fprintln(stderr, "env: NATS_URL, DATABASE_URL")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	p := config.NewParser(getenv)
	common := config.ParseCommon(p)
	if err := p.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var rep statusReport
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	nc, err := streams.Connect(common.NATSURL, "paystream-status", quiet)
	if err == nil {
		defer nc.Close()
		var js jetstream.JetStream
		if js, err = streams.NewJetStream(nc); err == nil {
			st := streams.ReadStatus(ctx, js)
			rep.Streams, rep.Consumer, rep.Problems = st.Streams, st.Consumer, st.Problems
		}
	}
	if err != nil {
		rep.Problems = append(rep.Problems, "nats: "+err.Error())
	}

	bdb, err := db.Open(ctx, common.DatabaseURL, db.Options{MaxOpenConns: 2})
	if err != nil {
		rep.Problems = append(rep.Problems, "postgres: "+err.Error())
	} else {
		defer bdb.Close()
		collectDB(ctx, bdb, &rep)
	}

	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printStatus(stdout, rep)
	}
	if len(rep.Problems) > 0 {
		return fmt.Errorf("status: %d problem(s)", len(rep.Problems))
	}
	return nil
}

func collectDB(ctx context.Context, bdb *bun.DB, rep *statusReport) {
	latest, _ := migrations.Latest()
	rep.Schema.Latest = latest
	if err := migrations.Current(ctx, bdb); err != nil {
		rep.Schema.Detail = err.Error()
		rep.Problems = append(rep.Problems, "schema: "+err.Error())
		return
	}
	rep.Schema.Current = true
	b, err := outbox.ReadBacklog(ctx, bdb)
	if err != nil {
		rep.Problems = append(rep.Problems, "outbox: "+err.Error())
		return
	}
	ob := outboxStatus{Backlog: int(b.Rows)}
	if b.Oldest != nil {
		ob.OldestAgeSec = max(time.Since(*b.Oldest).Seconds(), 0)
	}
	rep.Outbox = &ob
}

func printStatus(w io.Writer, rep statusReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tMESSAGES\tBYTES\tLAST SEQ\tLAST MESSAGE\tREPLICAS")
	for _, s := range rep.Streams {
		last := "-"
		if !s.LastTime.IsZero() && s.Messages > 0 {
			last = time.Since(s.LastTime).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%d\n", s.Name, s.Messages, s.Bytes, s.LastSeq, last, s.Replicas)
	}
	tw.Flush()
	fmt.Fprintln(w)
	if c := rep.Consumer; c != nil {
		fmt.Fprintf(w, "consumer %s: lag (pending) %d, ack-pending %d, redelivered %d, waiting pulls %d\n",
			c.Name, c.Pending, c.AckPending, c.Redelivered, c.Waiting)
	}
	for _, s := range rep.Streams {
		if s.Name == streams.DLQStream {
			fmt.Fprintf(w, "dead letters: %d (paystream dlq list)\n", s.Messages)
		}
	}
	if o := rep.Outbox; o != nil {
		fmt.Fprintf(w, "outbox backlog: %d unpublished, oldest %.1fs\n", o.Backlog, o.OldestAgeSec)
	}
	state := "current"
	if !rep.Schema.Current {
		state = "OUT OF DATE"
	}
	fmt.Fprintf(w, "schema: %s (latest migration %s)\n", state, rep.Schema.Latest)
	for _, p := range rep.Problems {
		fmt.Fprintln(w, "problem:", p)
	}
}
