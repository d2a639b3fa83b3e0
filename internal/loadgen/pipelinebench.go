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
	// Mix is the stream drained: "" for checkout purchases only,
	// MixSubscriptions for checkouts and subscription signups and renewals
	// (MixedStream), SubscriptionShare of the events.
	Mix               string
	SubscriptionShare float64 // default DefaultSubscriptionShare when Mix is set
}

// MixSubscriptions is PipelineBenchConfig.Mix for a stream of checkouts
// and subscription events.
const MixSubscriptions = "subscriptions"

// DefaultSubscriptionShare is the share of subscription events in a mixed
// stream unless told otherwise.
const DefaultSubscriptionShare = 0.5

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
	if c.Mix != "" && c.SubscriptionShare == 0 {
		c.SubscriptionShare = DefaultSubscriptionShare
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
	if c.Mix != "" && c.Mix != MixSubscriptions {
		return fmt.Errorf("loadgen: pipeline bench: Mix %q is not %q", c.Mix, MixSubscriptions)
	}
	if c.SubscriptionShare < 0 || c.SubscriptionShare > 1 || c.Mix != "" && int(float64(c.Events)*c.SubscriptionShare) < memberSteps {
		return fmt.Errorf("loadgen: pipeline bench: SubscriptionShare %g of %d events must be in [0, 1] and hold a subscription (%d events)",
			c.SubscriptionShare, c.Events, memberSteps)
	}
	if c.E2EDuration < 0 || c.E2ERate < 0 {
		return fmt.Errorf("loadgen: pipeline bench: E2EDuration %s and E2ERate %g must not be negative", c.E2EDuration, c.E2ERate)
	}
	return nil
}

// concurrency is the processor group's total: the SQL baseline runs as many.
func (c *PipelineBenchConfig) concurrency() int { return c.Processors * c.Workers }

// RunPipelineBench measures the processor group against the same SQL effects
// run directly (the SQL baseline) and against its physical ceiling (the rows
// it committed written again with one COPY per table, CopyCeiling), each
// with its CPU per event (the bench process's and the Postgres server's),
// then end-to-end latency at half the measured capacity. It is
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

	if cfg.Mix != "" {
		rep.Extra["mix"] = fmt.Sprintf("%s, %.0f %% of the events", cfg.Mix, 100*cfg.SubscriptionShare)
	}
	payloads, err := demoPayloads(0)
	if err != nil {
		return Report{}, err
	}
	b := pipelineBench{cfg: cfg, natsURL: ns.ClientURL(), dsn: sdb.URL, db: sdb.DB, js: js, payloads: payloads,
		pur: sdb.Purchase, cpu: NewCPUSampler(ctx, sdb.DB), progress: progress}
	fmt.Fprintf(progress, "  loading %d events into %s\n", cfg.Events, streams.EventsStream)
	if err := b.load(ctx); err != nil {
		return Report{}, err
	}
	mark, err := MarkRows(ctx, sdb.URL)
	if err != nil {
		return Report{}, err
	}

	// 1. The processor group drains the backlog.
	procRes, err := b.drain(ctx, cfg.BatchSize, cfg.Events, "processor")
	if err != nil {
		return Report{}, err
	}
	fmt.Fprintf(progress, "\r  processor group: %.1f events/s\n", procRes.PerSecond)
	// What it committed, for the COPY ceiling.
	committed, err := SnapshotCommitted(ctx, sdb.URL, mark, cfg.Events)
	if err != nil {
		return Report{}, err
	}
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
	base, err := b.baseline(ctx)
	if err != nil {
		return Report{}, err
	}
	// 3. The physical ceiling: the processor's rows, one COPY per table.
	ceiling, rows, err := CopyCeiling(ctx, sdb.URL, committed, b.cpu)
	if err != nil {
		return Report{}, err
	}
	fmt.Fprintf(progress, "  copy ceiling: %.1f events/s\n", ceiling.PerSecond)
	rep.Results = append([]Result{procRes}, compared...)
	rep.Results = append(rep.Results, base, ceiling)
	rep.Ratio = procRes.PerSecond / base.PerSecond
	rep.Extra["ratio_to_copy_ceiling"] = fmt.Sprintf("%.2fx", procRes.PerSecond/ceiling.PerSecond)
	rep.Extra["copy_ceiling_rows"] = rows
	for _, r := range compared {
		rep.Extra["ratio_"+strings.ReplaceAll(r.Name, " ", "_")] = fmt.Sprintf("%.2fx", r.PerSecond/base.PerSecond)
	}

	// 4. End-to-end latency through the real edge at half the capacity.
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
	pur      Purchase
	cpu      CPUSampler
	progress io.Writer
}

// load publishes b.cfg.Events new events: checkouts, or a mixed stream
// after its warm-up, applied by a processor group of its own.
func (b *pipelineBench) load(ctx context.Context) error {
	if b.cfg.Mix == "" {
		return Load(ctx, b.js, b.payloads, b.cfg.Events, 32)
	}
	run, err := b.mixed()
	if err != nil {
		return err
	}
	fmt.Fprintf(b.progress, "  warm-up: %d subscriptions created\n", len(run.Warmup))
	if err := LoadStream(ctx, b.js, run.Warmup, 32); err != nil {
		return err
	}
	if _, err := b.drain(ctx, b.cfg.BatchSize, len(run.Warmup), "warm-up"); err != nil {
		return err
	}
	return LoadStream(ctx, b.js, run.Events, 32)
}

// mixed is a new mixed stream of b.cfg.Events events.
func (b *pipelineBench) mixed() (MixedRun, error) {
	return MixedStream(b.payloads, b.pur, demo.CreatorPlanPriceCents, demo.PlanGraceDays, b.cfg.Events,
		b.cfg.SubscriptionShare, time.Now())
}

// baseline runs the SQL baseline of b.cfg.Events new events of the same
// kind as the drained ones, at the processor group's concurrency, with
// its CPU per event.
func (b *pipelineBench) baseline(ctx context.Context) (Result, error) {
	if b.cfg.Mix == "" {
		return b.cpu.measurePhase(func() (Result, error) {
			return SQLBaseline(ctx, b.db, b.payloads, b.pur, b.cfg.Events, b.cfg.concurrency(), b.progress)
		})
	}
	run, err := b.mixed()
	if err != nil {
		return Result{}, err
	}
	if _, err := StreamBaseline(ctx, b.db, run.Warmup, b.pur, b.cfg.concurrency(), nil); err != nil {
		return Result{}, err
	}
	return b.cpu.measurePhase(func() (Result, error) {
		return StreamBaseline(ctx, b.db, run.Events, b.pur, b.cfg.concurrency(), b.progress)
	})
}

// drain starts a fresh processor group at batch size size and times it
// until it applied the events events loaded last (stripe_events grew by as
// many rows); the result counts them.
func (b *pipelineBench) drain(ctx context.Context, size, events int, name string) (Result, error) {
	n, err := b.db.NewSelect().Table("stripe_events").Count(ctx)
	if err != nil {
		return Result{}, err
	}
	want := int(n) + events
	g, err := startGroup(ctx, b.natsURL, b.dsn, b.cfg, size, nil, nil)
	if err != nil {
		return Result{}, err
	}
	cpu0 := b.cpu.sample()
	start := time.Now()
	err = WaitEvents(ctx, b.db, want, b.progress)
	elapsed := time.Since(start)
	cpu1 := b.cpu.sample()
	if serr := g.stop(); err == nil {
		err = serr
	}
	if err != nil {
		return Result{}, err
	}
	return Result{Name: name, Concurrency: b.cfg.concurrency(), Requests: events, Elapsed: elapsed,
		PerSecond: float64(events) / elapsed.Seconds(), CPU: b.cpu.perEvent(cpu0, cpu1, events)}, nil
}

// drainAt loads b.cfg.Events more events and times a fresh processor group
// with batch size size draining them.
func (b *pipelineBench) drainAt(ctx context.Context, size int) (Result, error) {
	fmt.Fprintf(b.progress, "  loading %d more events for batch size %d\n", b.cfg.Events, size)
	if err := b.load(ctx); err != nil {
		return Result{}, err
	}
	r, err := b.drain(ctx, size, b.cfg.Events, fmt.Sprintf("processor batch %d", size))
	if err != nil {
		return Result{}, err
	}
	fmt.Fprintf(b.progress, "\r  processor group, batch size %d: %.1f events/s\n", size, r.PerSecond)
	return r, nil
}

// DemoPayloadSpec is the spec of checkout events buying the demo content
// (SeedDemo), padded to about size bytes (0 = natural size).
func DemoPayloadSpec(size int) PayloadSpec {
	return PayloadSpec{ContentID: demo.ContentID, OrganizationID: demo.OrganizationID,
		Amount: demo.PriceCents, Currency: demo.Currency, Size: size}
}

// demoPayloads are the payloads of DemoPayloadSpec(size).
func demoPayloads(size int) (*Payloads, error) { return NewPayloads(DemoPayloadSpec(size)) }

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
