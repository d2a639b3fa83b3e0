package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/app"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/devenv"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/loadgen"
	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/internal/processor"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/migrations"
	"github.com/paystream/paystream/streams"
)

// pipelineOptions are the flags of `paystream bench pipeline`.
type pipelineOptions struct {
	events, processors, workers int
	batchSize                   int
	compareBatchSizes           []int // further drains, one per size, beside the main one
	syncAlways, skipE2E, keepDB bool
	e2eDuration                 time.Duration
	e2eRate                     float64 // events/s offered in the end-to-end run; 0 = half the measured capacity
	asJSON                      bool
}

// benchPipeline measures the processor group against the same SQL effects
// run directly, then end-to-end latency at half the measured capacity. It is
// self-contained: an embedded broker in a temp dir and a scratch database on
// DATABASE_URL's server, both removed afterwards.
func benchPipeline(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	var o pipelineOptions
	fs := flag.NewFlagSet("bench pipeline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.events, "events", 2000, "events loaded for the throughput runs")
	fs.IntVar(&o.processors, "processors", 1, "processor instances sharing the durable consumer")
	fs.IntVar(&o.workers, "workers", processor.DefaultWorkers, "workers (and DB connections) per processor; the SQL baseline uses processors×workers")
	fs.IntVar(&o.batchSize, "batch-size", processor.DefaultBatchSize, "events per processor transaction (PROCESSOR_BATCH_SIZE; 1 = one transaction per event)")
	fs.Func("compare-batch-sizes", "comma-separated batch sizes drained after the main run, each with --events new events (e.g. 1,64)", func(v string) error {
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > processor.MaxBatchSize {
				return fmt.Errorf("batch size %q is not 1..%d", f, processor.MaxBatchSize)
			}
			o.compareBatchSizes = append(o.compareBatchSizes, n)
		}
		return nil
	})
	fs.BoolVar(&o.syncAlways, "sync-always", false, "broker fsyncs every write (sync_interval: always, the compose setting); default: fsync every 2 min")
	fs.DurationVar(&o.e2eDuration, "e2e-duration", 10*time.Second, "length of the end-to-end latency run")
	fs.BoolVar(&o.skipE2E, "skip-e2e", false, "skip the end-to-end latency run")
	fs.Float64Var(&o.e2eRate, "e2e-rate", 0, "events/s offered in the end-to-end run (0 = half the measured processor capacity)")
	fs.BoolVar(&o.keepDB, "keep-db", false, "keep the scratch database")
	fs.BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	setUsage(fs, stderr,
		"usage: paystream bench pipeline --events N [--processors K] [flags]",
		"loads N checkout events into an embedded JetStream, times the processor group committing them, runs",
		"the same SQL effects directly (one transaction per event, same concurrency) and prints the ratio,",
		"then measures edge receipt → commit latency at half the measured capacity through the real edge.",
		"env: DATABASE_URL (a scratch database is created on that server and dropped afterwards)",
	)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if o.events < 1 || o.processors < 1 || o.workers < 1 || o.batchSize < 1 || o.batchSize > processor.MaxBatchSize {
		return fmt.Errorf("bench pipeline: --events, --processors and --workers must be at least 1, --batch-size 1..%d", processor.MaxBatchSize)
	}
	p := config.NewParser(getenv)
	common := config.ParseCommon(p)
	if err := p.Err(); err != nil {
		return err
	}
	log := obs.NewLogger(io.Discard, slog.LevelError, "bench")
	if lv := getenv("LOG_LEVEL"); lv != "" {
		log = obs.NewLogger(stderr, common.LogLevel, "bench")
	}

	// A scratch database on the same server, migrated and seeded.
	dsn, dropDB, err := scratchDatabase(ctx, common.DatabaseURL)
	if err != nil {
		return err
	}
	if !o.keepDB {
		defer dropDB()
	}
	bdb, err := db.Open(ctx, dsn, db.Options{MaxOpenConns: o.processors*o.workers + 2})
	if err != nil {
		return err
	}
	defer bdb.Close()
	if _, err := migrations.Up(ctx, bdb); err != nil {
		return err
	}
	plan, err := seedOptions{content: demo.ContentID, org: demo.OrganizationID, creator: demo.CreatorID,
		currency: demo.Currency, price: demo.PriceCents, platformBps: 1000, orgBps: 500}.plan()
	if err != nil {
		return err
	}
	if err := seed(ctx, bdb, plan, io.Discard); err != nil {
		return err
	}

	// An embedded broker with the chosen durability.
	store, err := os.MkdirTemp("", "paystream-bench-nats-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(store)
	ns, err := devenv.StartNATS(devenv.NATSOptions{StoreDir: store, SyncAlways: o.syncAlways}, log)
	if err != nil {
		return err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, err := streams.Connect(ns.ClientURL(), "paystream-bench", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := streams.NewJetStream(nc)
	if err != nil {
		return err
	}
	if err := streams.Ensure(ctx, js, common.Streams); err != nil {
		return err
	}

	sync := "default (fsync every 2 min)"
	if o.syncAlways {
		sync = "always"
	}
	rep := benchReport{Kind: "pipeline", Machine: machine(), Started: time.Now(), Extra: map[string]any{
		"events": o.events, "processors": o.processors, "workers_per_processor": o.workers, "broker_sync": sync,
		"batch_size": o.batchSize,
	}}
	fmt.Fprintf(stderr, "bench pipeline: %d events, %d processor(s) × %d workers, broker sync %s, %s\n",
		o.events, o.processors, o.workers, sync, rep.Machine)

	payloads, err := loadgen.NewPayloads(loadgen.PayloadSpec{ContentID: demo.ContentID, OrganizationID: demo.OrganizationID,
		Amount: demo.PriceCents, Currency: demo.Currency})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "  loading %d events into %s\n", o.events, streams.EventsStream)
	if err := loadgen.Load(ctx, js, payloads, o.events, 32); err != nil {
		return err
	}

	// 1. The processor group drains the backlog.
	group, err := startBenchApp(ctx, ns.ClientURL(), dsn, o, getenv, log, nil, nil)
	if err != nil {
		return err
	}
	start := time.Now()
	err = loadgen.WaitEvents(ctx, bdb, o.events, stderr)
	elapsed := time.Since(start)
	if serr := group.stop(); err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	procRes := loadgen.Result{Name: "processor", Concurrency: o.processors * o.workers, Requests: o.events,
		Elapsed: elapsed, PerSecond: float64(o.events) / elapsed.Seconds()}
	fmt.Fprintf(stderr, "\r  processor group: %.1f events/s\n", procRes.PerSecond)
	// The same drain at other batch sizes, side by side in one run.
	var compared []loadgen.Result
	for _, size := range o.compareBatchSizes {
		r, err := drainAt(ctx, ns.ClientURL(), dsn, bdb, js, payloads, o, size, getenv, log, stderr)
		if err != nil {
			return err
		}
		compared = append(compared, r)
	}

	// 2. The baseline: the same SQL effects, one transaction per event.
	s := plan.expectSplit
	pa, co := plan.Platform.ID, plan.CreatorOrg.ID
	base, err := loadgen.SQLBaseline(ctx, bdb, payloads, loadgen.Purchase{
		ContentID: plan.Content.ID, OrganizationID: plan.Content.OrganizationID, Amount: s.Amount,
		Currency: plan.Content.Currency, PlatformFee: s.Platform, OrgFee: s.Organization, Creator: s.Creator,
		PlatformBps: s.PlatformBps, OrgBps: s.OrganizationBps, PlatformAgreement: &pa, CreatorOrg: &co,
	}, o.events, o.processors*o.workers, stderr)
	if err != nil {
		return err
	}
	rep.Results = append([]loadgen.Result{procRes}, compared...)
	rep.Results = append(rep.Results, base)
	rep.Ratio = procRes.PerSecond / base.PerSecond
	for _, r := range compared {
		rep.Extra["ratio_"+strings.ReplaceAll(r.Name, " ", "_")] = fmt.Sprintf("%.2fx", r.PerSecond/base.PerSecond)
	}

	// 3. End-to-end latency through the real edge at half the capacity.
	if !o.skipE2E {
		rate := procRes.PerSecond / 2
		if o.e2eRate > 0 {
			rate = o.e2eRate
		}
		lat, offered, err := benchE2E(ctx, ns.ClientURL(), dsn, bdb, js, o, rate, getenv, log, stderr)
		if err != nil {
			return err
		}
		rep.Extra["e2e_offered_per_second"] = offered
		rep.E2E = &lat
		rep.Extra["e2e_summary"] = fmt.Sprintf("%d events at %.0f/s offered: p50 %s p90 %s p99 %s max %s",
			lat.Events, offered, lat.P50.Round(time.Microsecond), lat.P90.Round(time.Microsecond),
			lat.P99.Round(time.Microsecond), lat.Max.Round(time.Microsecond))
	}
	rep.Finished = time.Now()
	return printBench(stdout, rep, o.asJSON)
}

// drainAt loads o.events more events and times a fresh processor group
// with batch size size draining them.
func drainAt(ctx context.Context, natsURL, dsn string, bdb *bun.DB, js jetstream.JetStream, payloads *loadgen.Payloads,
	o pipelineOptions, size int, getenv config.Getenv, log *slog.Logger, stderr io.Writer) (loadgen.Result, error) {
	before, err := bdb.NewSelect().Table("stripe_events").Count(ctx)
	if err != nil {
		return loadgen.Result{}, err
	}
	fmt.Fprintf(stderr, "  loading %d more events for batch size %d\n", o.events, size)
	if err := loadgen.Load(ctx, js, payloads, o.events, 32); err != nil {
		return loadgen.Result{}, err
	}
	o.batchSize = size
	g, err := startBenchApp(ctx, natsURL, dsn, o, getenv, log, nil, nil)
	if err != nil {
		return loadgen.Result{}, err
	}
	start := time.Now()
	err = loadgen.WaitEvents(ctx, bdb, int(before)+o.events, stderr)
	elapsed := time.Since(start)
	if serr := g.stop(); err == nil {
		err = serr
	}
	if err != nil {
		return loadgen.Result{}, err
	}
	r := loadgen.Result{Name: fmt.Sprintf("processor batch %d", size), Concurrency: o.processors * o.workers,
		Requests: o.events, Elapsed: elapsed, PerSecond: float64(o.events) / elapsed.Seconds()}
	fmt.Fprintf(stderr, "\r  processor group, batch size %d: %.1f events/s\n", size, r.PerSecond)
	return r, nil
}

// benchE2E runs the real edge and a fresh processor group, offers load at
// rate through the edge for o.e2eDuration, and times every applied event from
// the edge's receipt to the return of its committed transaction.
func benchE2E(ctx context.Context, natsURL, dsn string, bdb *bun.DB, js jetstream.JetStream, o pipelineOptions,
	rate float64, getenv config.Getenv, log *slog.Logger, stderr io.Writer) (loadgen.Latency, float64, error) {
	secret := stripefixture.NewSecret()
	ecfg, err := config.ParseEdge(config.MapEnv(map[string]string{"NATS_URL": natsURL, "STRIPE_WEBHOOK_SECRET": secret,
		"EDGE_RATE_LIMIT": "0", "EDGE_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0"}), []string{"STRIPE_WEBHOOK_SECRET"})
	if err != nil {
		return loadgen.Latency{}, 0, err
	}
	clock := loadgen.NewCommitClock()
	group, err := startBenchApp(ctx, natsURL, dsn, o, getenv, log, &ecfg, clock)
	if err != nil {
		return loadgen.Latency{}, 0, err
	}
	defer func() { _ = group.stop() }() // a no-op after the stop below
	addrs := group.addrs.Edge
	before, err := bdb.NewSelect().Table("stripe_events").Count(ctx)
	if err != nil {
		return loadgen.Latency{}, 0, err
	}
	payloads, err := loadgen.NewPayloads(loadgen.PayloadSpec{ContentID: demo.ContentID, OrganizationID: demo.OrganizationID,
		Amount: demo.PriceCents, Currency: demo.Currency})
	if err != nil {
		return loadgen.Latency{}, 0, err
	}
	clock.Start()
	fmt.Fprintf(stderr, "  end-to-end: %.0f events/s through the edge for %s\n", rate, o.e2eDuration)
	res, err := loadgen.RunEdge(ctx, loadgen.EdgeConfig{URL: "http://" + addrs.Public + "/webhooks/stripe", Secret: secret,
		Concurrency: 64, Duration: o.e2eDuration, Rate: rate, Progress: stderr}, payloads)
	if err == nil && res.Errors > 0 {
		err = fmt.Errorf("end-to-end run: %d requests failed (%v)", res.Errors, res.ByStatus)
	}
	if err == nil {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err = loadgen.WaitEvents(wctx, bdb, int(before)+res.Requests, nil)
		cancel()
	}
	lat := clock.Stop()
	if serr := group.stop(); err == nil {
		err = serr
	}
	if err != nil {
		return loadgen.Latency{}, 0, err
	}
	return lat, res.PerSecond, nil
}

// benchApp is paystream running in this process through app.App: the
// processor group (each instance with its own NATS connection and database
// pool, as separate processes would have) and, for the end-to-end run, the
// edge.
type benchApp struct {
	cancel context.CancelFunc
	done   chan error
	addrs  app.Addrs
	once   sync.Once
	err    error
}

// startBenchApp starts the group with the bench's flags on top of the
// environment, and the edge when ecfg is set; clock, when set, times every
// commit. It returns once everything listens and consumes.
func startBenchApp(ctx context.Context, natsURL, dsn string, o pipelineOptions, getenv config.Getenv, log *slog.Logger,
	ecfg *config.Edge, clock *loadgen.CommitClock) (*benchApp, error) {
	over := map[string]string{"NATS_URL": natsURL, "DATABASE_URL": dsn, "ADMIN_ADDR": "127.0.0.1:0",
		"DB_MAX_CONNS": strconv.Itoa(o.workers), "PROCESSOR_WORKERS": strconv.Itoa(o.workers),
		"PROCESSOR_BATCH_SIZE": strconv.Itoa(o.batchSize)}
	pcfg, err := app.ParseProcessor(func(k string) string {
		if v, ok := over[k]; ok {
			return v
		}
		return getenv(k)
	})
	if err != nil {
		return nil, err
	}
	pcfg.Instances = o.processors
	ready := make(chan app.Addrs, 1)
	opts := []app.Option{app.WithClientName("paystream-bench"), app.WithReady(func(a app.Addrs) { ready <- a })}
	if clock != nil {
		opts = append(opts, app.WithHandler(func(_ app.Runtime, h handling.Handler) handling.Handler { return clock.Wrap(h) }))
	}
	a, err := app.New(app.Config{Edge: ecfg, Processor: &pcfg}, log, opts...)
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithCancel(ctx)
	b := &benchApp{cancel: cancel, done: make(chan error, 1)}
	go func() { b.done <- a.Run(actx) }()
	select {
	case b.addrs = <-ready:
		return b, nil
	case err := <-b.done:
		cancel()
		return nil, fmt.Errorf("bench: start: %w", err)
	}
}

// stop stops everything and returns what went wrong while it ran.
func (b *benchApp) stop() error {
	b.once.Do(func() {
		b.cancel()
		b.err = <-b.done
	})
	return b.err
}

// scratchDatabase creates paystream_bench_<unix> on serverURL's server and
// returns its URL and a function that drops it.
func scratchDatabase(ctx context.Context, serverURL string) (string, func(), error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	name := "paystream_bench_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	u.Path = "/" + name
	dsn := u.String()
	if err := devenv.EnsureDatabase(ctx, dsn); err != nil {
		return "", nil, fmt.Errorf("bench: scratch database on %s: %w", db.Redact(serverURL), err)
	}
	drop := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return
		}
		cfg.Database = "postgres"
		c, err := pgx.ConnectConfig(dctx, cfg)
		if err != nil {
			return
		}
		defer c.Close(dctx)
		_, _ = c.Exec(dctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	}
	return dsn, drop, nil
}
