package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/loadgen"
	"github.com/paystream/paystream/internal/processor"
)

// benchPipeline measures the processor group against the same SQL effects
// run directly, then end-to-end latency at half the measured capacity
// (loadgen.RunPipelineBench), and prints the report.
func benchPipeline(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	var c loadgen.PipelineBenchConfig
	fs := flag.NewFlagSet("bench pipeline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.Events, "events", loadgen.DefaultPipelineEvents, "events loaded for the throughput runs")
	fs.IntVar(&c.Processors, "processors", 1, "processor instances sharing the durable consumer")
	fs.IntVar(&c.Workers, "workers", processor.DefaultWorkers, "workers (and DB connections) per processor; the SQL baseline uses processors×workers")
	fs.IntVar(&c.BatchSize, "batch-size", processor.DefaultBatchSize, "events per processor transaction (PROCESSOR_BATCH_SIZE; 1 = one transaction per event)")
	fs.Func("compare-batch-sizes", "comma-separated batch sizes drained after the main run, each with --events new events (e.g. 1,64)", func(v string) error {
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > processor.MaxBatchSize {
				return fmt.Errorf("batch size %q is not 1..%d", f, processor.MaxBatchSize)
			}
			c.CompareBatchSizes = append(c.CompareBatchSizes, n)
		}
		return nil
	})
	fs.BoolVar(&c.SyncAlways, "sync-always", false, "broker fsyncs every write (sync_interval: always, the compose setting); default: fsync every 2 min")
	fs.DurationVar(&c.E2EDuration, "e2e-duration", loadgen.DefaultE2EDuration, "length of the end-to-end latency run")
	fs.BoolVar(&c.SkipE2E, "skip-e2e", false, "skip the end-to-end latency run")
	fs.Float64Var(&c.E2ERate, "e2e-rate", 0, "events/s offered in the end-to-end run (0 = half the measured processor capacity)")
	fs.BoolVar(&c.E2ECapacity, "e2e-capacity", false, "first measure the end-to-end capacity (events offered through the edge at the drain rate, commits counted) and offer half of that")
	fs.BoolVar(&c.KeepDB, "keep-db", false, "keep the scratch database")
	fs.StringVar(&c.Mix, "mix", "", "the stream drained: empty for checkout purchases only, \""+loadgen.MixSubscriptions+"\" for checkouts and subscription signups and renewals (customer.subscription.created/updated, invoice.paid)")
	fs.Float64Var(&c.SubscriptionShare, "subscription-share", loadgen.DefaultSubscriptionShare, "with --mix subscriptions: the share of subscription events in the stream (0..1)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	setUsage(fs, stderr,
		"usage: paystream bench pipeline --events N [--processors K] [--mix subscriptions] [flags]",
		"loads N checkout events (or, with --mix, checkouts and subscription events) into an embedded JetStream,",
		"times the processor group committing them, runs the same SQL effects directly (one transaction per",
		"event, same concurrency) and prints the ratio, writes the rows the processor committed again with one",
		"COPY per table (the physical ceiling) and prints the processor's ratio to it, then measures edge",
		"receipt → commit latency at half the measured capacity through the real edge. Every drain reports its",
		"CPU per event: the bench process's (processor group and broker, or the SQL client) and the local",
		"Postgres server's (all of its processes, from /proc; n/a for a remote server).",
		"env: DATABASE_URL (a scratch database is created on that server and dropped afterwards)",
	)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if c.Events < 1 || c.Processors < 1 || c.Workers < 1 || c.BatchSize < 1 || c.BatchSize > processor.MaxBatchSize {
		return fmt.Errorf("bench pipeline: --events, --processors and --workers must be at least 1, --batch-size 1..%d", processor.MaxBatchSize)
	}
	if c.Mix == "" {
		c.SubscriptionShare = 0
	}
	p := config.NewParser(getenv)
	common := config.ParseCommon(p)
	if err := p.Err(); err != nil {
		return err
	}
	c.Log = benchLogger(getenv, common, stderr)
	c.DatabaseURL, c.Streams, c.Env = common.DatabaseURL, common.Streams, getenv
	rep, err := loadgen.RunPipelineBench(ctx, c, stderr)
	if err != nil {
		return err
	}
	return printBench(stdout, rep, *asJSON)
}
