// Package app is paystream's one composition root: it builds the services
// (the purchase API, the edge and the processor group) from
// their configuration and runs them under one supervisor with an ordered
// shutdown. cmd/edge, cmd/processor, cmd/api, `paystream dev`, `paystream
// bench pipeline` and `bench api` and the full-stack tests in
// internal/pipeline all start the system through App; they differ only in the Config and Options they pass.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/edge"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/processor"
	"github.com/paystream/paystream/internal/supervise"
)

// Config says which services run and how. A nil service is not run.
type Config struct {
	// API is the purchase API (cmd/api): its listeners, Stripe settings and
	// its own pool on DatabaseURL.
	API *config.API
	// Edge is the webhook receiver (cmd/edge).
	Edge *config.Edge
	// Processor is the consumer group (cmd/processor).
	Processor *Processor
}

// Processor is the processor group's configuration: the runtime settings,
// the domain's (purchase handler, outbox relay, periodic reconcile), and how
// many instances run in this process.
type Processor struct {
	Runtime config.Processor
	Domain  DomainConfig
	// Instances is the number of processor instances sharing the durable
	// consumer, each with its own NATS connection, pool and registry as
	// separate processes would have; 0 means 1.
	Instances int
}

// ParseProcessor reads the processor group's whole environment (runtime and
// domain) before anything connects; the error names every bad variable.
func ParseProcessor(getenv config.Getenv) (Processor, error) {
	rt, err := config.ParseProcessor(getenv)
	p := config.NewParser(getenv)
	dom := ParseDomain(p)
	if err := errors.Join(err, p.Err()); err != nil {
		return Processor{}, err
	}
	return Processor{Runtime: rt, Domain: dom}, nil
}

// Addrs are the bound listener addresses of the running services (useful
// with :0 ports). A service that does not run leaves its fields empty.
type Addrs struct {
	API            api.Addrs  // purchase API public and admin listeners
	Edge           edge.Addrs // webhook and edge admin listeners
	ProcessorAdmin []string   // one admin listener per processor instance
}

// Option adjusts how App builds the services; tests and the load tool use
// them instead of wiring their own.
type Option func(*App)

// WithReady calls f once, with the bound addresses, when every service
// listens and consumes.
func WithReady(f func(Addrs)) Option { return func(a *App) { a.ready = f } }

// WithHandler puts wrap around each processor instance's domain handler
// (fault injection, the load tool's commit clock).
func WithHandler(wrap func(rt Runtime, h handling.Handler) handling.Handler) Option {
	return func(a *App) { a.wrap = wrap }
}

// WithProcessorTuning adjusts each processor instance's runtime settings
// that have no environment variable (PollInterval, AckTimeout).
func WithProcessorTuning(tune func(*processor.Config)) Option {
	return func(a *App) { a.tune = tune }
}

// WithGrace bounds how long each service may take to stop once told to;
// a service still running after that is reported and left behind so the
// program can exit. Without it, Run waits for every service.
func WithGrace(d time.Duration) Option { return func(a *App) { a.grace = d } }

// WithClientName sets the prefix of the NATS client names (default
// "paystream"): the edge connects as <prefix>-edge, processors as
// <prefix>-processor[-N].
func WithClientName(prefix string) Option { return func(a *App) { a.clientName = prefix } }

// App is a configured paystream, ready to Run.
type App struct {
	cfg        Config
	log        *slog.Logger
	ready      func(Addrs)
	wrap       func(Runtime, handling.Handler) handling.Handler
	tune       func(*processor.Config)
	grace      time.Duration
	clientName string
}

// New checks cfg and returns the App; nothing connects before Run.
func New(cfg Config, log *slog.Logger, opts ...Option) (*App, error) {
	if log == nil {
		return nil, errors.New("app: a logger is required")
	}
	if cfg.API == nil && cfg.Edge == nil && cfg.Processor == nil {
		return nil, errors.New("app: no service configured")
	}
	if cfg.Processor != nil && cfg.Processor.Instances < 0 {
		return nil, fmt.Errorf("app: %d processor instances", cfg.Processor.Instances)
	}
	a := &App{cfg: cfg, log: log, clientName: "paystream"}
	for _, o := range opts {
		o(a)
	}
	return a, nil
}

// Run runs every configured service until ctx ends or one of them fails,
// then stops them in order: the purchase API first (no new checkouts),
// then the edge (no new events come in), then
// each processor instance (in-flight events finish and are acked, then its
// outbox relay publishes what they wrote, then its NATS connection drains and
// its database closes). The error joins every service's failure.
func (a *App) Run(ctx context.Context) error {
	var (
		mu      sync.Mutex
		addrs   Addrs
		pending int
	)
	// Each service reports its addresses once; Ready fires after the last.
	report := func(set func(*Addrs)) func() {
		var once sync.Once
		return func() {
			once.Do(func() {
				mu.Lock()
				set(&addrs)
				pending--
				done := pending == 0
				snapshot := addrs
				snapshot.ProcessorAdmin = append([]string(nil), addrs.ProcessorAdmin...)
				mu.Unlock()
				if done && a.ready != nil {
					a.ready(snapshot)
				}
			})
		}
	}

	// Units are listed in stop order: the API's first (stop taking
	// requests), then the edge's (stop taking webhooks), then the
	// processors (finish and relay what came in).
	var units []supervise.Unit
	if c := a.cfg.API; c != nil {
		pending++
		log := a.log.With("component", "api")
		var ready func(api.Addrs)
		units = append(units, supervise.Unit{Name: "api", Run: func(ctx context.Context) error {
			return runAPI(ctx, *c, log, ready)
		}})
		var bound api.Addrs
		r := report(func(s *Addrs) { s.API = bound })
		ready = func(b api.Addrs) { bound = b; r() }
	}
	if c := a.cfg.Edge; c != nil {
		pending++
		log := a.log.With("component", "edge")
		var ready func(edge.Addrs)
		units = append(units, supervise.Unit{Name: "edge", Run: func(ctx context.Context) error {
			return runEdge(ctx, *c, a.clientName+"-edge", log, ready)
		}})
		var bound edge.Addrs
		r := report(func(s *Addrs) { s.Edge = bound })
		ready = func(b edge.Addrs) { bound = b; r() }
	}
	if c := a.cfg.Processor; c != nil {
		n := max(c.Instances, 1)
		addrs.ProcessorAdmin = make([]string, n)
		for i := range n {
			pending++
			unit, log := "processor", a.log.With("component", "processor")
			if n > 1 {
				unit = fmt.Sprintf("processor-%d", i+1)
				log = log.With("instance", i+1)
			}
			name := a.clientName + "-" + unit
			var bound string
			r := report(func(s *Addrs) { s.ProcessorAdmin[i] = bound })
			svc := processorService{Config: c.Runtime, Domain: c.Domain.Domain(), Log: log, Name: name,
				Wrap: a.wrap, Tune: a.tune, Ready: func(addr string) { bound = addr; r() }}
			units = append(units, supervise.Unit{Name: unit, Run: svc.Run})
		}
	}
	return supervise.Run(ctx, a.log, supervise.Options{Grace: a.grace}, units...)
}
