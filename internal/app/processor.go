package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/internal/processor"
	"github.com/paystream/paystream/internal/supervise"
	"github.com/paystream/paystream/migrations"
	"github.com/paystream/paystream/streams"
)

// Companion is a long-running part of the processor program beside the
// consumer, e.g. the outbox relay. Run returns when ctx ends.
type Companion struct {
	Name string
	Run  func(ctx context.Context) error
}

// DomainDeps is what the domain side gets to build itself.
type DomainDeps struct {
	DB  *bun.DB
	JS  jetstream.JetStream
	Reg prometheus.Registerer
	Log *slog.Logger
}

// Domain builds the domain handler and its companions. DomainConfig.Domain
// wires the purchase handler, the outbox relay and the periodic reconcile;
// tests wire fakes. The runtime itself knows nothing of purchases.
type Domain func(deps DomainDeps) (handling.Handler, []Companion, error)

// processorService is one processor instance, the whole processor program
// once its environment is parsed; App runs one per instance.
type processorService struct {
	Config config.Processor
	Domain Domain
	Log    *slog.Logger
	// Ready, if set, is called once everything runs, with the admin
	// server's bound address (useful with ADMIN_ADDR=127.0.0.1:0).
	Ready func(adminAddr string)

	// Name is the NATS client name; default "paystream-processor".
	Name string
	// Wrap, if set, puts a handler around the domain's (fault injection in
	// tests, the load tool's commit clock). It sees the instance's parts.
	Wrap func(rt Runtime, h handling.Handler) handling.Handler
	// Tune, if set, adjusts the runtime settings the environment does not
	// carry (e.g. PollInterval, AckTimeout) before the processor is built.
	Tune func(*processor.Config)
}

// Runtime is what one running processor instance is made of, handed to
// the WithHandler wrapper: tests cut its connection or read its metrics.
type Runtime struct {
	Conn     *nats.Conn
	DB       *bun.DB
	Registry *prometheus.Registry
}

// Run opens the database and refuses to start on an outdated schema,
// connects to NATS and ensures the streams, serves the admin endpoints, builds
// the domain and runs the consumer group until ctx ends. It then shuts down in
// order: the processor drains (in-flight events finish and are acked), the
// companions stop (the relay publishes what those last transactions wrote),
// the NATS connection drains, the admin server and the database close.
func (s processorService) Run(ctx context.Context) error {
	cfg, log := s.Config, s.Log
	if s.Domain == nil || log == nil {
		return errors.New("processor service: Domain and Log are required")
	}
	reg := obs.NewRegistry()
	m := processor.NewMetrics(reg)

	bdb, err := db.Open(ctx, cfg.DatabaseURL, db.Options{MaxOpenConns: cfg.DBMaxConns})
	if err != nil {
		return err
	}
	defer func() {
		if err := bdb.Close(); err != nil {
			log.Warn("close database", "error", err)
		}
	}()
	if err := migrations.Current(ctx, bdb); err != nil {
		return fmt.Errorf("refusing to start: %w", err)
	}
	if err := processor.RegisterDBStats(reg, bdb.DB.Stats); err != nil {
		return fmt.Errorf("register db metrics: %w", err)
	}

	name := s.Name
	if name == "" {
		name = "paystream-processor"
	}
	nc, err := streams.Connect(cfg.NATSURL, name, log)
	if err != nil {
		return err
	}
	defer nc.Close() // after Drain below; a no-op then
	js, err := streams.NewJetStream(nc)
	if err != nil {
		return err
	}
	if err := ensureStreams(ctx, js, cfg.Streams, log); err != nil {
		return err
	}

	h, companions, err := s.Domain(DomainDeps{DB: bdb, JS: js, Reg: reg, Log: log})
	if err != nil {
		return fmt.Errorf("build domain handler: %w", err)
	}
	if s.Wrap != nil {
		h = s.Wrap(Runtime{Conn: nc, DB: bdb, Registry: reg}, h)
	}
	pc := processor.Config{
		Consumer:        cfg.Consumer,
		Workers:         cfg.Workers,
		HandleTimeout:   cfg.HandleTimeout,
		ShutdownTimeout: cfg.ShutdownTimeout,
		BatchSize:       cfg.BatchSize,
		BatchWait:       cmp.Or(cfg.BatchWait, -1), // PROCESSOR_BATCH_WAIT=0: never wait
		PartialBatches:  cfg.PartialBatches,
		// The breaker's probe: a store outage holds events instead of
		// spending their delivery budget, until this answers again.
		Breaker: processor.BreakerConfig{Probe: func(ctx context.Context) error { return db.Probe(ctx, bdb) }},
	}
	if s.Tune != nil {
		s.Tune(&pc)
	}
	p, err := processor.New(js, h, pc, m, log)
	if err != nil {
		return err
	}
	checks := []obs.Check{
		{Name: "nats", Check: func(context.Context) error {
			if !nc.IsConnected() {
				return fmt.Errorf("not connected (%s)", nc.Status())
			}
			return nil
		}},
		{Name: "stream", Check: func(ctx context.Context) error { return streams.Check(ctx, js, streams.EventsStream) }},
		{Name: "database", Check: func(ctx context.Context) error { return bdb.PingContext(ctx) }},
		{Name: "consumer", Check: p.Check},
	}
	admin, err := obs.Listen(cfg.AdminAddr, obs.AdminHandler(reg, checks, log), log)
	if err != nil {
		return fmt.Errorf("admin listener %s (ADMIN_ADDR): %w", cfg.AdminAddr, err)
	}
	adminDone := make(chan error, 1)
	go func() { adminDone <- admin.Serve() }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = admin.Shutdown(sctx)
		<-adminDone
	}()

	log.Info("processor started", "admin_addr", admin.Addr(), "workers", cfg.Workers, "batch_size", p.Config().BatchSize)
	if s.Ready != nil {
		s.Ready(admin.Addr())
	}

	runErr := runWithCompanions(ctx, p, companions, log)
	drainErr := drainConn(nc, 5*time.Second)
	return errors.Join(runErr, drainErr)
}

// runWithCompanions runs p and the companions under the one supervisor
// until ctx ends. The companions are stopped only after p has drained, so
// the outbox rows written by the last acked events are still relayed. If a
// companion fails (or returns before shutdown), everything stops and its
// error is returned.
func runWithCompanions(ctx context.Context, p *processor.Processor, companions []Companion, log *slog.Logger) error {
	units := []supervise.Unit{{Name: "processor", Run: p.Run}}
	for _, c := range companions {
		units = append(units, supervise.Unit(c))
	}
	return supervise.Run(ctx, log, supervise.Options{}, units...)
}

// ensureStreams creates or updates the streams, waiting for the broker if it
// is not up yet (the processor may start before NATS).
func ensureStreams(ctx context.Context, js jetstream.JetStream, c streams.Config, log *slog.Logger) error {
	wait := 250 * time.Millisecond
	for {
		ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := streams.Ensure(ectx, js, c)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for NATS: %w", err)
		}
		log.Warn("cannot ensure streams yet; retrying", "error", err, "retry_in", wait.String())
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for NATS: %w", err)
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}

// drainConn drains nc (flushing acks still in the buffer) and waits until it
// is closed, at most timeout.
func drainConn(nc *nats.Conn, timeout time.Duration) error {
	if nc.IsClosed() {
		return nil
	}
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		if nc.IsClosed() {
			return nil
		}
		return fmt.Errorf("drain nats connection: %w", err)
	}
	select {
	case <-closed:
		return nil
	case <-time.After(timeout):
		return errors.New("drain nats connection: timed out")
	}
}
