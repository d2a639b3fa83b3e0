// Package processorservice is the processor's part of internal/app: each
// instance's pool on a current schema, the consumer runtime around the
// domain's handler, the companions (outbox relay, periodic reconcile) and
// their readiness. App runs every instance through the lifecycle every
// service shares. It is apart from internal/app so the edge binary does not
// link Postgres and Stripe.
package processorservice

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/app"
	"github.com/paystream/paystream/internal/config/processorconfig"
	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/internal/processor"
	"github.com/paystream/paystream/internal/supervise"
	"github.com/paystream/paystream/migrations"
)

// Runtime is what one running processor instance is made of, handed to the
// WithHandler wrapper: tests cut its connection or read its metrics.
type Runtime struct {
	Conn     *nats.Conn
	DB       *bun.DB
	Registry *prometheus.Registry
}

// Option adjusts the processor instances New returns; tests and the load
// tool use them instead of wiring their own.
type Option func(*options)

type options struct {
	instances int
	domain    Domain
	wrap      func(Runtime, handling.Handler) handling.Handler
	tune      func(*processor.Config)
}

// WithInstances runs n instances in this process (default 1), sharing the
// durable consumer, each with its own NATS connection, pool and registry as
// separate processes would have.
func WithInstances(n int) Option { return func(o *options) { o.instances = n } }

// WithDomain builds the domain with d instead of the purchase domain of the
// configuration (tests wire fakes).
func WithDomain(d Domain) Option { return func(o *options) { o.domain = d } }

// WithHandler puts wrap around each instance's domain handler (fault
// injection, the load tool's commit clock).
func WithHandler(wrap func(rt Runtime, h handling.Handler) handling.Handler) Option {
	return func(o *options) { o.wrap = wrap }
}

// WithTuning adjusts each instance's runtime settings that have no
// environment variable (PollInterval, AckTimeout).
func WithTuning(tune func(*processor.Config)) Option { return func(o *options) { o.tune = tune } }

// New returns the processor group of cfg: one service per instance.
func New(cfg processorconfig.Config, opts ...Option) []app.Service {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.domain == nil {
		o.domain = PurchaseDomain(cfg.Domain)
	}
	n := max(o.instances, 1)
	services := make([]app.Service, n)
	for i := range services {
		s := app.Service{Role: app.RoleProcessor, AdminAddr: cfg.AdminAddr, NATSURL: cfg.NATSURL, Streams: cfg.Streams,
			AwaitStreams: true, Part: &part{cfg: cfg, o: o}}
		if n > 1 {
			s.Instance = i + 1
		}
		services[i] = s
	}
	return services
}

// part builds one processor instance.
type part struct {
	cfg processorconfig.Config
	o   options
	db  *bun.DB
}

// Open opens the instance's pool, refuses an outdated schema and exports
// the pool's statistics.
func (p *part) Open(ctx context.Context, env app.Env) (func() error, error) {
	bdb, err := migrations.OpenCurrent(ctx, p.cfg.DatabaseURL, db.Options{MaxOpenConns: p.cfg.DBMaxConns})
	if err != nil {
		return nil, err
	}
	if err := processor.RegisterDBStats(env.Registry, bdb.DB.Stats); err != nil {
		_ = bdb.Close()
		return nil, fmt.Errorf("register db metrics: %w", err)
	}
	p.db = bdb
	return bdb.Close, nil
}

// Build builds the domain's handler and companions and the consumer runtime
// around the handler. The consumer stops first (its in-flight events are
// applied and acked), then the companions (the relay publishes what those
// last transactions wrote).
func (p *part) Build(_ context.Context, env app.Env) (app.Parts, error) {
	h, companions, err := p.o.domain(DomainDeps{DB: p.db, JS: env.JS, Reg: env.Registry, Log: env.Log})
	if err != nil {
		return app.Parts{}, fmt.Errorf("build domain handler: %w", err)
	}
	if p.o.wrap != nil {
		h = p.o.wrap(Runtime{Conn: env.Conn, DB: p.db, Registry: env.Registry}, h)
	}
	pc := p.cfg.Config
	// The breaker's probe: a store outage holds events instead of spending
	// their delivery budget, until this answers again.
	pc.Breaker.Probe = func(ctx context.Context) error { return db.Probe(ctx, p.db) }
	if p.o.tune != nil {
		p.o.tune(&pc)
	}
	proc, err := processor.New(env.JS, h, pc, processor.NewMetrics(env.Registry), env.Log)
	if err != nil {
		return app.Parts{}, err
	}
	units := []supervise.Unit{{Name: "consumer", Run: proc.Run}}
	for _, c := range companions {
		units = append(units, supervise.Unit(c))
	}
	return app.Parts{
		Units: units,
		Checks: []obs.Check{
			{Name: "database", Check: p.db.PingContext},
			{Name: "consumer", Check: proc.Check},
		},
		Attrs: []any{"workers", proc.Config().Workers, "batch_size", proc.Config().BatchSize},
	}, nil
}
