package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/obs"
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

// Domain builds the domain handler and its companions. cmd/processor wires
// the purchase handler and the outbox relay here; tests wire fakes. The
// runtime itself knows nothing of purchases.
type Domain func(deps DomainDeps) (handling.Handler, []Companion, error)

// Service is the whole processor program once its environment is parsed. The
// processor binary and the all-in-one dev mode run it.
type Service struct {
	Config config.Processor
	Domain Domain
	Log    *slog.Logger
	// Ready, if set, is called once everything runs, with the admin
	// server's bound address (useful with ADMIN_ADDR=127.0.0.1:0).
	Ready func(adminAddr string)
}

// Run opens the database and refuses to start on an outdated schema,
// connects to NATS and ensures the streams, serves the admin endpoints, builds
// the domain and runs the consumer group until ctx ends. It then shuts down in
// order: the processor drains (in-flight events finish and are acked), the
// companions stop (the relay publishes what those last transactions wrote),
// the NATS connection drains, the admin server and the database close.
func (s Service) Run(ctx context.Context) error {
	cfg, log := s.Config, s.Log
	if s.Domain == nil || log == nil {
		return errors.New("processor service: Domain and Log are required")
	}
	reg := obs.NewRegistry()
	m := NewMetrics(reg)

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
	if err := RegisterDBStats(reg, bdb.DB.Stats); err != nil {
		return fmt.Errorf("register db metrics: %w", err)
	}

	nc, err := streams.Connect(cfg.NATSURL, "paystream-processor", log)
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
	p, err := New(js, h, Config{
		Consumer:        cfg.Consumer,
		Workers:         cfg.Workers,
		HandleTimeout:   cfg.HandleTimeout,
		ShutdownTimeout: cfg.ShutdownTimeout,
		BatchSize:       cfg.BatchSize,
		Breaker:         BreakerConfig{Probe: func(ctx context.Context) error { return db.Probe(ctx, bdb) }},
	}, m, log)
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

	runErr := RunWithCompanions(ctx, p, companions, log)
	drainErr := drainConn(nc, 5*time.Second)
	return errors.Join(runErr, drainErr)
}

// RunWithCompanions runs p and the companions until ctx ends. The companions
// are stopped only after p has drained, so the outbox rows written by the last
// acked events are still relayed. If a companion fails, everything stops and
// its error is returned.
func RunWithCompanions(ctx context.Context, p *Processor, companions []Companion, log *slog.Logger) error {
	pctx, stopProcessor := context.WithCancel(ctx)
	defer stopProcessor()
	cctx, stopCompanions := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCompanions()

	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, c := range companions {
		wg.Go(func() {
			err := c.Run(cctx)
			if cctx.Err() != nil {
				if err != nil && !errors.Is(err, context.Canceled) {
					log.Warn("companion stopped with an error", "companion", c.Name, "error", err)
				}
				return
			}
			// A companion that ends on its own is broken: stop the program
			// so the orchestrator restarts it, rather than run half of it.
			if err == nil {
				err = errors.New("returned before shutdown")
			}
			log.Error("companion failed; shutting down", "companion", c.Name, "error", err)
			mu.Lock()
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
			mu.Unlock()
			stopProcessor()
		})
	}
	perr := p.Run(pctx)
	stopCompanions()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return errors.Join(append([]error{perr}, errs...)...)
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
