package loadgen

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/devenv"
	"github.com/paystream/paystream/internal/processor"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/subscription"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

// Defaults of PipelineBenchConfig.
const (
	DefaultPipelineEvents = 2000             // events per throughput run
	DefaultE2EDuration    = 10 * time.Second // length of the end-to-end run
)

// The seeded agreements every pipeline bench event buys under.
const (
	benchPlatformBps = 1000
	benchOrgBps      = 500
)

// PipelineBenchConfig drives RunPipelineBench (`paystream bench pipeline`).
// Zero fields take the defaults of setDefaults.
type PipelineBenchConfig struct {
	// DatabaseURL names the Postgres server the scratch database is created
	// on (its database part is ignored). Required.
	DatabaseURL string
	Streams     streams.Config // the streams on the embedded broker; default streams.DefaultConfig
	// Env is the environment the processor group's remaining settings are
	// read from, under the bench's own NATS_URL, DATABASE_URL, ADMIN_ADDR,
	// DB_MAX_CONNS, PROCESSOR_WORKERS and PROCESSOR_BATCH_SIZE; nil = none.
	Env config.Getenv
	Log *slog.Logger // the broker's and the services' log; nil = discarded

	Events     int // events per throughput run; default DefaultPipelineEvents
	Processors int // processor instances sharing the durable consumer; default 1
	// Workers is the workers (and database connections) per processor;
	// the SQL baseline runs processors×workers. Default processor.DefaultWorkers.
	Workers   int
	BatchSize int // events per processor transaction; default processor.DefaultBatchSize
	// CompareBatchSizes are further drains after the main one, each of
	// Events new events at one batch size, reported beside it.
	CompareBatchSizes []int
	SyncAlways        bool          // the broker fsyncs every write (the compose setting) instead of every 2 min
	SkipE2E           bool          // no end-to-end latency run
	E2EDuration       time.Duration // length of the end-to-end run; default DefaultE2EDuration
	E2ERate           float64       // events/s offered end to end; 0 = half the measured processor capacity
	// E2ECapacity measures the end-to-end capacity first (events offered
	// through the edge at the drain rate, commits counted) and, unless
	// E2ERate is set, offers half of that instead of half the drain rate:
	// on one machine the edge and the load tool take their share of the
	// cores the drain had to itself.
	E2ECapacity bool
	KeepDB      bool // leave the scratch database behind
}

func (c *PipelineBenchConfig) setDefaults() {
	if c.Streams == (streams.Config{}) {
		c.Streams = streams.DefaultConfig()
	}
	if c.Env == nil {
		c.Env = config.MapEnv(nil)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Events == 0 {
		c.Events = DefaultPipelineEvents
	}
	if c.Processors == 0 {
		c.Processors = 1
	}
	if c.Workers == 0 {
		c.Workers = processor.DefaultWorkers
	}
	if c.BatchSize == 0 {
		c.BatchSize = processor.DefaultBatchSize
	}
	if c.E2EDuration == 0 {
		c.E2EDuration = DefaultE2EDuration
	}
}

func (c *PipelineBenchConfig) validate() error {
	if c.DatabaseURL == "" {
		return fmt.Errorf("loadgen: pipeline bench: DatabaseURL is required")
	}
	if c.Events < 1 || c.Processors < 1 || c.Workers < 1 {
		return fmt.Errorf("loadgen: pipeline bench: Events %d, Processors %d and Workers %d must be at least 1",
			c.Events, c.Processors, c.Workers)
	}
	for _, n := range append([]int{c.BatchSize}, c.CompareBatchSizes...) {
		if n < 1 || n > processor.MaxBatchSize {
			return fmt.Errorf("loadgen: pipeline bench: batch size %d is not 1..%d", n, processor.MaxBatchSize)
		}
	}
	if c.E2EDuration < 0 || c.E2ERate < 0 {
		return fmt.Errorf("loadgen: pipeline bench: E2EDuration %s and E2ERate %g must not be negative", c.E2EDuration, c.E2ERate)
	}
	return nil
}

// concurrency is the processor group's total: the SQL baseline runs as many.
func (c *PipelineBenchConfig) concurrency() int { return c.Processors * c.Workers }

// RunPipelineBench measures the processor group against the same SQL effects
// run directly, then end-to-end latency at half the measured capacity. It is
// self-contained: an embedded broker in a temp dir and a scratch database on
// cfg.DatabaseURL's server, both removed afterwards (unless cfg.KeepDB). The
// processor group and the edge start through internal/app, as in production.
// Progress lines go to progress (nil = quiet).
func RunPipelineBench(ctx context.Context, cfg PipelineBenchConfig, progress io.Writer) (Report, error) {
	if err := prepare(&cfg); err != nil {
		return Report{}, err
	}
	progress = orDiscard(progress)

	// A scratch database on the same server, migrated and seeded.
	sdb, err := OpenDemoDatabase(ctx, cfg.DatabaseURL, cfg.KeepDB, cfg.concurrency()+2)
	if err != nil {
		return Report{}, err
	}
	defer sdb.Close()

	// An embedded broker with the chosen durability.
	store, err := os.MkdirTemp("", "paystream-bench-nats-")
	if err != nil {
		return Report{}, err
	}
	defer os.RemoveAll(store)
	ns, err := devenv.StartNATS(devenv.NATSOptions{StoreDir: store, SyncAlways: cfg.SyncAlways}, cfg.Log)
	if err != nil {
		return Report{}, err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, js, err := connectBench(ns.ClientURL(), cfg.Log)
	if err != nil {
		return Report{}, err
	}
	defer nc.Close()
	if err := streams.Ensure(ctx, js, cfg.Streams); err != nil {
		return Report{}, err
	}

	sync := "default (fsync every 2 min)"
	if cfg.SyncAlways {
		sync = "always"
	}
	rep := Report{Kind: "pipeline", Machine: Machine(), Started: time.Now(), Extra: map[string]any{
		"events": cfg.Events, "processors": cfg.Processors, "workers_per_processor": cfg.Workers, "broker_sync": sync,
		"batch_size": cfg.BatchSize,
	}}
	fmt.Fprintf(progress, "bench pipeline: %d events, %d processor(s) × %d workers, broker sync %s, %s\n",
		cfg.Events, cfg.Processors, cfg.Workers, sync, rep.Machine)

	payloads, err := demoPayloads(0)
	if err != nil {
		return Report{}, err
	}
	fmt.Fprintf(progress, "  loading %d events into %s\n", cfg.Events, streams.EventsStream)
	if err := Load(ctx, js, payloads, cfg.Events, 32); err != nil {
		return Report{}, err
	}
	b := pipelineBench{cfg: cfg, natsURL: ns.ClientURL(), dsn: sdb.URL, db: sdb.DB, js: js, payloads: payloads, progress: progress}

	// 1. The processor group drains the backlog.
	procRes, err := b.drain(ctx, cfg.BatchSize, cfg.Events, "processor")
	if err != nil {
		return Report{}, err
	}
	fmt.Fprintf(progress, "\r  processor group: %.1f events/s\n", procRes.PerSecond)
	// The same drain at other batch sizes, side by side in one run.
	var compared []Result
	for _, size := range cfg.CompareBatchSizes {
		r, err := b.drainAt(ctx, size)
		if err != nil {
			return Report{}, err
		}
		compared = append(compared, r)
	}

	// 2. The baseline: the same SQL effects, one transaction per event.
	base, err := SQLBaseline(ctx, sdb.DB, payloads, sdb.Purchase, cfg.Events, cfg.concurrency(), progress)
	if err != nil {
		return Report{}, err
	}
	rep.Results = append([]Result{procRes}, compared...)
	rep.Results = append(rep.Results, base)
	rep.Ratio = procRes.PerSecond / base.PerSecond
	for _, r := range compared {
		rep.Extra["ratio_"+strings.ReplaceAll(r.Name, " ", "_")] = fmt.Sprintf("%.2fx", r.PerSecond/base.PerSecond)
	}

	// 3. End-to-end latency through the real edge at half the capacity.
	if !cfg.SkipE2E {
		rate := procRes.PerSecond / 2
		if cfg.E2ECapacity {
			capacity, err := b.e2eCapacity(ctx, procRes.PerSecond)
			if err != nil {
				return Report{}, err
			}
			rep.Extra["e2e_capacity_per_second"] = capacity
			fmt.Fprintf(progress, "\r  end-to-end capacity: %.1f events/s committed\n", capacity)
			rate = capacity / 2
		}
		if cfg.E2ERate > 0 {
			rate = cfg.E2ERate
		}
		lat, offered, err := b.e2e(ctx, rate)
		if err != nil {
			return Report{}, err
		}
		rep.Extra["e2e_offered_per_second"] = offered
		rep.E2E = &lat
		rep.Extra["e2e_summary"] = fmt.Sprintf("%d events at %.0f/s offered: p50 %s p90 %s p99 %s max %s, %.1f events per transaction; receipt to handler start p50 %s p99 %s",
			lat.Events, offered, lat.P50.Round(time.Microsecond), lat.P90.Round(time.Microsecond),
			lat.P99.Round(time.Microsecond), lat.Max.Round(time.Microsecond), float64(lat.Events)/float64(max(lat.Calls, 1)),
			lat.StartP50.Round(time.Microsecond), lat.StartP99.Round(time.Microsecond))
	}
	rep.Finished = time.Now()
	return rep, nil
}

// pipelineBench is one run's broker, scratch database and settings, shared
// by its measured steps.
type pipelineBench struct {
	cfg      PipelineBenchConfig
	natsURL  string
	dsn      string
	db       *bun.DB
	js       jetstream.JetStream
	payloads *Payloads
	progress io.Writer
}

// drain starts a fresh processor group at batch size size and times it
// until stripe_events holds want rows; the result counts b.cfg.Events.
func (b *pipelineBench) drain(ctx context.Context, size, want int, name string) (Result, error) {
	g, err := startGroup(ctx, b.natsURL, b.dsn, b.cfg, size, nil, nil)
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	err = WaitEvents(ctx, b.db, want, b.progress)
	elapsed := time.Since(start)
	if serr := g.stop(); err == nil {
		err = serr
	}
	if err != nil {
		return Result{}, err
	}
	return Result{Name: name, Concurrency: b.cfg.concurrency(), Requests: b.cfg.Events,
		Elapsed: elapsed, PerSecond: float64(b.cfg.Events) / elapsed.Seconds()}, nil
}

// drainAt loads b.cfg.Events more events and times a fresh processor group
// with batch size size draining them.
func (b *pipelineBench) drainAt(ctx context.Context, size int) (Result, error) {
	before, err := b.db.NewSelect().Table("stripe_events").Count(ctx)
	if err != nil {
		return Result{}, err
	}
	fmt.Fprintf(b.progress, "  loading %d more events for batch size %d\n", b.cfg.Events, size)
	if err := Load(ctx, b.js, b.payloads, b.cfg.Events, 32); err != nil {
		return Result{}, err
	}
	r, err := b.drain(ctx, size, int(before)+b.cfg.Events, fmt.Sprintf("processor batch %d", size))
	if err != nil {
		return Result{}, err
	}
	fmt.Fprintf(b.progress, "\r  processor group, batch size %d: %.1f events/s\n", size, r.PerSecond)
	return r, nil
}

// e2eCapacity offers events through the edge at rate (the drain rate: more
// than the group can commit while the edge and the load tool share the
// machine) and returns how many events per second the group committed
// meanwhile.
func (b *pipelineBench) e2eCapacity(ctx context.Context, rate float64) (float64, error) {
	var committed float64
	_, err := b.throughEdge(ctx, "end-to-end capacity", rate, nil, func(before int, elapsed time.Duration) error {
		after, err := b.db.NewSelect().Table("stripe_events").Count(ctx)
		committed = float64(int(after)-before) / elapsed.Seconds()
		return err
	})
	return committed, err
}

// e2e offers load at rate through the edge and times every applied event
// from the edge's receipt to the return of its committed transaction. It
// returns the latencies and the rate the edge actually took.
func (b *pipelineBench) e2e(ctx context.Context, rate float64) (Latency, float64, error) {
	clock := NewCommitClock()
	res, err := b.throughEdge(ctx, "end-to-end", rate, clock, nil)
	lat := clock.Stop()
	if err != nil {
		return Latency{}, 0, err
	}
	return lat, res.PerSecond, nil
}

// throughEdge starts the real edge and a fresh processor group (its commits
// timed by clock, when set), offers events through the edge at rate for
// b.cfg.E2EDuration, calls loaded (when set) as soon as the load stops with
// the stripe_events count from before it and the run's length, then waits
// until every accepted event is committed, so the next run starts empty,
// and stops the group.
func (b *pipelineBench) throughEdge(ctx context.Context, name string, rate float64, clock *CommitClock,
	loaded func(before int, elapsed time.Duration) error) (Result, error) {
	secret := stripefixture.NewSecret()
	ecfg, err := config.ParseEdge(config.MapEnv(map[string]string{"NATS_URL": b.natsURL, "STRIPE_WEBHOOK_SECRET": secret,
		"EDGE_RATE_LIMIT": "0", "EDGE_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0"}), []string{"STRIPE_WEBHOOK_SECRET"})
	if err != nil {
		return Result{}, err
	}
	group, err := startGroup(ctx, b.natsURL, b.dsn, b.cfg, b.cfg.BatchSize, &ecfg, clock)
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = group.stop() }() // a no-op after the stop below
	n, err := b.db.NewSelect().Table("stripe_events").Count(ctx)
	if err != nil {
		return Result{}, err
	}
	before := int(n)
	if clock != nil {
		clock.Start()
	}
	fmt.Fprintf(b.progress, "  %s: %.0f events/s offered through the edge for %s\n", name, rate, b.cfg.E2EDuration)
	res, err := RunEdge(ctx, EdgeConfig{URL: "http://" + group.addrs.Edge.Public + "/webhooks/stripe", Secret: secret,
		Concurrency: 64, Duration: b.cfg.E2EDuration, Rate: rate, Progress: b.progress}, b.payloads)
	if err == nil && res.Errors > 0 {
		err = fmt.Errorf("%s run: %d requests failed (%v)", name, res.Errors, res.ByStatus)
	}
	if err == nil && loaded != nil {
		err = loaded(before, res.Elapsed)
	}
	if err == nil {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		err = WaitEvents(wctx, b.db, before+res.Requests, nil)
		cancel()
	}
	if serr := group.stop(); err == nil {
		err = serr
	}
	return res, err
}

// demoPayloads are checkout events buying the demo content, padded to
// about size bytes (0 = natural size).
func demoPayloads(size int) (*Payloads, error) {
	return NewPayloads(PayloadSpec{ContentID: demo.ContentID, OrganizationID: demo.OrganizationID,
		Amount: demo.PriceCents, Currency: demo.Currency, Size: size})
}

// SeedDemo makes the demo content, its agreements and the demo creator plan
// exist in bdb (as `paystream seed` does) and returns what each event buys,
// for the SQL baseline.
func SeedDemo(ctx context.Context, bdb *bun.DB) (Purchase, error) {
	contentID, err := uuid.Parse(demo.ContentID)
	if err != nil {
		return Purchase{}, err
	}
	orgID, err := uuid.Parse(demo.OrganizationID)
	if err != nil {
		return Purchase{}, err
	}
	s, err := split.Compute(demo.PriceCents, split.Terms{PlatformBps: benchPlatformBps, OrganizationBps: benchOrgBps})
	if err != nil {
		return Purchase{}, fmt.Errorf("seed: %w", err)
	}
	seed := purchase.NewSeed(model.Content{ID: contentID, CreatorID: demo.CreatorID, OrganizationID: orgID,
		PriceCents: demo.PriceCents, Currency: demo.Currency, Visibility: "public"}, benchPlatformBps, benchOrgBps)
	if _, err := purchase.SeedCatalog(ctx, bdb, seed); err != nil {
		return Purchase{}, err
	}
	creator := demo.CreatorID
	if _, err := subscription.SeedPlans(ctx, bdb, model.SubscriptionPlan{ID: uuid.MustParse(demo.CreatorPlanID),
		OrganizationID: orgID, CreatorID: &creator, Name: demo.CreatorPlanName, PriceCents: demo.CreatorPlanPriceCents,
		Currency: demo.Currency, Interval: demo.PlanInterval, IntervalCount: 1, GraceDays: demo.PlanGraceDays}); err != nil {
		return Purchase{}, err
	}
	pa, co := seed.Platform.ID, seed.CreatorOrg.ID
	return Purchase{
		ContentID: seed.Content.ID, OrganizationID: seed.Content.OrganizationID, CreatorID: seed.Content.CreatorID, Amount: s.Amount,
		Currency: seed.Content.Currency, PlatformFee: s.Platform, OrgFee: s.Organization, Creator: s.Creator,
		PlatformBps: s.PlatformBps, OrgBps: s.OrganizationBps, PlatformAgreement: &pa, CreatorOrg: &co,
	}, nil
}
