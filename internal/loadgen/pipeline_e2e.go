package loadgen

import (
	"context"
	"fmt"
	"time"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/stripefixture"
)

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
