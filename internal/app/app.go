// Package app is paystream's one composition root: it runs the services
// (the purchase API, the edge and the processor instances) under one
// supervisor, each through the same lifecycle, and stops them in order.
//
// The whole start and stop order is in this file: Run says in which order
// the services stop, runService how each one starts and stops (its store,
// NATS, stream ensuring, its listeners, the drain). A service only builds
// what it alone has, its Part: the edge's is in this package (Edge); the
// purchase API's (app/apiservice) and the processor's (app/processorservice)
// are apart so the edge binary links neither Postgres nor Stripe.
// cmd/edge, cmd/processor, cmd/api, `paystream dev`, `paystream bench` and
// the full-stack tests (internal/pipeline) all start the system through
// App; they differ only in the services and Options they pass.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/internal/supervise"
)

// App is a configured paystream, ready to Run.
type App struct {
	services   []Service // in stop order
	log        *slog.Logger
	ready      func(Addrs)
	grace      time.Duration
	clientName string
}

// New checks the services and returns the App; nothing connects before Run.
func New(services []Service, log *slog.Logger, opts ...Option) (*App, error) {
	if log == nil {
		return nil, errors.New("app: a logger is required")
	}
	if len(services) == 0 {
		return nil, errors.New("app: no service configured")
	}
	for _, s := range services {
		if s.Part == nil {
			return nil, fmt.Errorf("app: service %s has no Part", s.name())
		}
	}
	a := &App{services: slices.Clone(services), log: log, clientName: "paystream"}
	// The stop order is the roles' order: intake first, then the work.
	slices.SortStableFunc(a.services, func(x, y Service) int { return int(x.Role) - int(y.Role) })
	for _, o := range opts {
		o(a)
	}
	return a, nil
}

// Run runs every service until ctx ends or one of them fails, then stops
// them one after the other: the purchase API first (no new checkouts), then
// the edge (no new webhooks), then the processor instances (what came in is
// applied, acked and relayed). The error joins every service's failure.
func (a *App) Run(ctx context.Context) error {
	rep := newReporter(a.services, a.ready)
	units := make([]supervise.Unit, len(a.services))
	for i, s := range a.services {
		name := s.name()
		log := a.log.With("component", s.Role.String())
		if s.Instance > 0 {
			log = log.With("instance", s.Instance)
		}
		units[i] = supervise.Unit{Name: name, Run: func(ctx context.Context) error {
			return a.runService(ctx, s, name, log, func(l Listeners) { rep.report(s, l) })
		}}
	}
	return supervise.Run(ctx, a.log, supervise.Options{Grace: a.grace}, units...)
}

// runService runs one service until ctx ends, then stops it. Every service
// starts the same way:
//
//  1. Part.Open: what it keeps besides the broker (a database pool, refused
//     when its schema is outdated), before anything connects;
//  2. NATS: connect (in the background while the broker is down) and ensure
//     the streams, awaited when the service cannot start without them;
//  3. Part.Build: its own parts, on those;
//  4. its public listener (if it has one) and its admin listener
//     (/metrics, /healthz, /readyz, /debug/pprof/); then ready;
//  5. serve until ctx ends or a part fails;
//
// and stops the same way: /readyz turns 503; the public listener stops
// accepting and lets the requests in flight finish; the units stop one after
// the other (a consumer's in-flight events are applied and acked before the
// companions that flush what they wrote); the admin listener closes; the
// NATS connection drains (acks and publishes still buffered go out); what
// Open opened closes.
func (a *App) runService(ctx context.Context, s Service, name string, log *slog.Logger, ready func(Listeners)) (err error) {
	defer func() {
		if err == nil {
			log.Info(name + " stopped")
		}
	}()
	env := Env{Log: log, Registry: obs.NewRegistry()}

	closeOpened, err := s.Part.Open(ctx, env)
	if err != nil {
		return err
	}
	if closeOpened != nil {
		defer func() { err = errors.Join(err, closeOpened()) }()
	}

	var checks []obs.Check
	if s.NATSURL != "" {
		b, err := connectBroker(ctx, s, a.clientName+"-"+name, log)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, b.stop()) }()
		env.Conn, env.JS = b.nc, b.js
		checks = b.checks()
	}

	parts, err := s.Part.Build(ctx, env)
	if err != nil {
		return err
	}

	var stopping atomic.Bool
	checks = append([]obs.Check{{Name: "shutdown", Check: func(context.Context) error {
		if stopping.Load() {
			return errors.New("shutting down")
		}
		return nil
	}}}, append(checks, parts.Checks...)...)
	var pub net.Listener
	if p := parts.Public; p != nil {
		if pub, err = net.Listen("tcp", p.Addr); err != nil {
			return fmt.Errorf("listen on %s %s: %w", p.Var, p.Addr, err)
		}
	}
	admin, err := obs.Listen(s.AdminAddr, obs.AdminHandler(env.Registry, checks, log), log)
	if err != nil {
		if pub != nil {
			_ = pub.Close()
		}
		return fmt.Errorf("listen on ADMIN_ADDR %s: %w", s.AdminAddr, err)
	}
	bound := Listeners{Admin: admin.Addr()}
	var units []supervise.Unit
	if pub != nil {
		bound.Public = pub.Addr().String()
		units = append(units, publicUnit(pub, parts.Public))
	}
	units = append(append(units, parts.Units...), adminUnit(admin))

	log.Info(name+" listening", append([]any{"public_addr", bound.Public, "admin_addr", bound.Admin}, parts.Attrs...)...)
	ready(bound)
	return supervise.Run(ctx, log, supervise.Options{Stopping: func() {
		stopping.Store(true)
		log.Info(name + " stopping")
	}}, units...)
}

// publicUnit serves p on ln until its turn to stop, then shuts p's server
// down, waiting at most p.ShutdownTimeout for the requests in flight.
func publicUnit(ln net.Listener, p *Public) supervise.Unit {
	return supervise.Unit{Name: "public listener", Run: func(ctx context.Context) error {
		served := make(chan error, 1)
		go func() { served <- p.Server.Serve(ln) }()
		select {
		case err := <-served:
			return fmt.Errorf("public listener: %w", cmp.Or(err, supervise.ErrStoppedEarly))
		case <-ctx.Done():
		}
		sctx, cancel := context.Background(), context.CancelFunc(func() {})
		if p.ShutdownTimeout > 0 {
			sctx, cancel = context.WithTimeout(sctx, p.ShutdownTimeout)
		}
		defer cancel()
		err := p.Server.Shutdown(sctx)
		// fasthttp's Shutdown closes only a listener its Serve registered:
		// a stop right after the start would leave the port bound.
		_ = ln.Close()
		<-served
		if err != nil {
			return fmt.Errorf("shutdown of the public listener: %w", err)
		}
		return nil
	}}
}

// adminUnit serves the admin listener until its turn to stop.
func adminUnit(admin *obs.Server) supervise.Unit {
	return supervise.Unit{Name: "admin listener", Run: func(ctx context.Context) error {
		served := make(chan error, 1)
		go func() { served <- admin.Serve() }()
		select {
		case err := <-served:
			return fmt.Errorf("admin listener: %w", cmp.Or(err, supervise.ErrStoppedEarly))
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err := admin.Shutdown(sctx)
		if serr := <-served; serr != nil {
			err = errors.Join(err, serr)
		}
		if err != nil {
			return fmt.Errorf("shutdown of the admin listener: %w", err)
		}
		return nil
	}}
}

// Addrs are the bound listener addresses of the running services (useful
// with :0 ports). A service that does not run leaves its fields empty.
type Addrs struct {
	API            Listeners // the purchase API's
	Edge           Listeners // the edge's
	ProcessorAdmin []string  // one admin listener per processor instance
}

// Listeners are one service's bound listener addresses.
type Listeners struct {
	Public string // its public listener (API_ADDR, EDGE_ADDR); "" for a processor
	Admin  string // ADMIN_ADDR
}

// reporter gathers the services' addresses and calls ready once every
// service has reported.
type reporter struct {
	mu      sync.Mutex
	addrs   Addrs
	pending int
	ready   func(Addrs)
}

func newReporter(services []Service, ready func(Addrs)) *reporter {
	r := &reporter{pending: len(services), ready: ready}
	for _, s := range services {
		if s.Role == RoleProcessor {
			r.addrs.ProcessorAdmin = append(r.addrs.ProcessorAdmin, "")
		}
	}
	return r
}

func (r *reporter) report(s Service, l Listeners) {
	r.mu.Lock()
	switch s.Role {
	case RoleAPI:
		r.addrs.API = l
	case RoleEdge:
		r.addrs.Edge = l
	case RoleProcessor:
		r.addrs.ProcessorAdmin[max(s.Instance, 1)-1] = l.Admin
	}
	r.pending--
	done := r.pending == 0
	snapshot := r.addrs
	snapshot.ProcessorAdmin = slices.Clone(r.addrs.ProcessorAdmin)
	r.mu.Unlock()
	if done && r.ready != nil {
		r.ready(snapshot)
	}
}
