package loadgen

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	"github.com/paystream/paystream/internal/app"
	"github.com/paystream/paystream/internal/app/processorservice"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/processorconfig"
	"github.com/paystream/paystream/internal/handling"
)

// group is paystream running in this process through app.App: the
// processor group (each instance with its own NATS connection and database
// pool, as separate processes would have) and, for the end-to-end run, the
// edge; or, for the API bench, the purchase API.
type group struct {
	cancel context.CancelFunc
	done   chan error
	addrs  app.Addrs
	once   sync.Once
	err    error
}

// startGroup starts the processor group with the bench's settings on top of
// cfg.Env at batch size batch, and the edge when ecfg is set; clock, when
// set, times every commit. It returns once everything listens and consumes.
func startGroup(ctx context.Context, natsURL, dsn string, cfg PipelineBenchConfig, batch int,
	ecfg *config.Edge, clock *CommitClock) (*group, error) {
	over := map[string]string{"NATS_URL": natsURL, "DATABASE_URL": dsn, "ADMIN_ADDR": "127.0.0.1:0",
		"DB_MAX_CONNS": strconv.Itoa(cfg.Workers), "PROCESSOR_WORKERS": strconv.Itoa(cfg.Workers),
		"PROCESSOR_BATCH_SIZE": strconv.Itoa(batch)}
	pcfg, err := processorconfig.Parse(config.Overlay(cfg.Env, over))
	if err != nil {
		return nil, err
	}
	popts := []processorservice.Option{processorservice.WithInstances(cfg.Processors)}
	if clock != nil {
		popts = append(popts, processorservice.WithHandler(func(_ processorservice.Runtime, h handling.Handler) handling.Handler { return clock.Wrap(h) }))
	}
	var services []app.Service
	if ecfg != nil {
		services = append(services, app.Edge(*ecfg))
	}
	return startApp(ctx, append(services, processorservice.New(pcfg, popts...)...), cfg.Log)
}

// startApp runs services through app.App as paystream-bench and returns
// once every one of them listens (and consumes).
func startApp(ctx context.Context, services []app.Service, log *slog.Logger) (*group, error) {
	ready := make(chan app.Addrs, 1)
	a, err := app.New(services, log, app.WithClientName("paystream-bench"), app.WithReady(func(a app.Addrs) { ready <- a }))
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithCancel(ctx)
	g := &group{cancel: cancel, done: make(chan error, 1)}
	go func() { g.done <- a.Run(actx) }()
	select {
	case g.addrs = <-ready:
		return g, nil
	case err := <-g.done:
		cancel()
		return nil, fmt.Errorf("bench: start: %w", err)
	}
}

// stop stops everything and returns what went wrong while it ran.
func (g *group) stop() error {
	g.once.Do(func() {
		g.cancel()
		g.err = <-g.done
	})
	return g.err
}
