package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/streams"
)

// ErrShutdownTimeout means in-flight handlers did not finish within
// Config.ShutdownTimeout; they were cancelled and their events will be
// redelivered (nothing was acked).
var ErrShutdownTimeout = errors.New("processor: shutdown timed out")

// Processor is one member of the processor consumer group.
type Processor struct {
	js  jetstream.JetStream
	h   handling.Handler
	bh  handling.BatchHandler // h, when it handles batches and BatchSize > 1
	cfg Config
	m   *Metrics
	log *slog.Logger

	consuming atomic.Bool // a pull subscription is live

	breaker *breaker // nil when BreakerConfig.Probe is nil
	parked  *parking // messages received while the breaker was not closed

	// forming is held by the one worker taking events off the queue into
	// its next batch, so waiting events gather in one batch rather than
	// one per idle worker; partial holds a slot per batch in handling that
	// is smaller than the batch size (Config.PartialBatches).
	forming chan struct{}
	partial chan struct{}

	lost *lostAcks // acks the broker did not get, sent again (acks.go)
}

// New returns a Processor that feeds the events of the durable consumer to h.
// m may be nil (metrics are then kept but not registered anywhere).
func New(js jetstream.JetStream, h handling.Handler, cfg Config, m *Metrics, log *slog.Logger) (*Processor, error) {
	if js == nil || h == nil || log == nil {
		return nil, errors.New("processor: JetStream, handler and logger are required")
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	p := &Processor{js: js, h: h, cfg: cfg, m: m, log: log, parked: newParking(),
		breaker: newBreaker(cfg.Breaker, m.breaker, log, cfg.Now),
		forming: make(chan struct{}, 1), partial: make(chan struct{}, cfg.PartialBatches),
		lost: newLostAcks(2 * cfg.Consumer.MaxAckPending)}
	if bh, ok := h.(handling.BatchHandler); ok && cfg.BatchSize > 1 {
		p.bh = bh
	}
	return p, nil
}

// batchSize is the effective batch size: 1 unless the handler takes batches.
func (p *Processor) batchSize() int {
	if p.bh == nil {
		return 1
	}
	return p.cfg.BatchSize
}

// Config returns the effective configuration, defaults filled in.
func (p *Processor) Config() Config { return p.cfg }

// Check is a readiness check: it fails until the processor pulls from its
// consumer (the broker is unreachable, or the consumer cannot be created
// because its stored configuration conflicts) and after it stopped.
func (p *Processor) Check(context.Context) error {
	if err := p.breaker.check(); err != nil {
		return err
	}
	if !p.consuming.Load() {
		return fmt.Errorf("not consuming from %s/%s", streams.EventsStream, streams.ProcessorConsumer)
	}
	return nil
}

// delivery is a message on its way from the consume callback to a worker.
type delivery struct {
	msg     jetstream.Msg
	arrived time.Time // when its AckWait clock last (re)started, as far as we know
}

// Run ensures the durable consumer and processes its messages until ctx ends,
// then shuts down gracefully: it stops pulling (Drain), lets the handlers that
// are running and the few prefetched messages finish and be acked, and returns
// nil. If that takes longer than ShutdownTimeout, the handlers are cancelled
// (their events are nak'ed or simply redelivered after AckWait) and Run
// returns ErrShutdownTimeout. Broker outages are ridden out: the client
// reconnects and Run resubscribes if the consumer went away.
func (p *Processor) Run(ctx context.Context) error {
	// Handlers get their own context: when ctx ends they must finish, not
	// abort. It is cancelled only when the shutdown budget runs out.
	hctx, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()
	if p.breaker != nil {
		p.breaker.stop = ctx.Done() // shutdown releases what the breaker holds
	}

	// Without batching the queue is unbuffered: the consume callback waits
	// for a free worker. With batching it holds what was prefetched beyond
	// one message per worker; a worker that frees up takes what waits there
	// as its next batch.
	work := make(chan delivery, max(p.cfg.prefetch(p.batchSize())-p.cfg.Workers, 0))
	stopWorkers := make(chan struct{})
	var workers sync.WaitGroup
	for range p.cfg.Workers {
		workers.Go(func() { p.work(hctx, work, stopWorkers) })
	}
	var bg sync.WaitGroup
	bg.Go(func() { p.pollGauges(ctx) })
	bg.Go(func() { p.watchAdvisories(ctx) })
	bg.Go(func() { p.resendAcks(ctx) })
	if p.breaker != nil {
		bg.Go(func() { p.breaker.run(ctx) })
		bg.Go(func() { p.tendParking(ctx, hctx, work) })
	}

	cc := p.consume(ctx, hctx, work)

	p.log.Info("processor shutting down", "shutdown_timeout", p.cfg.ShutdownTimeout.String())
	timer := time.AfterFunc(p.cfg.ShutdownTimeout, abandon)
	defer timer.Stop()
	if cc != nil {
		cc.Drain() // stop pulling; prefetched messages still reach the callback
		select {
		case <-cc.Closed():
		case <-hctx.Done():
		}
	}
	// No callback runs any more (or hctx is done and callbacks nak instead of
	// waiting for a worker), so the workers may stop after their message.
	close(stopWorkers)
	done := make(chan struct{})
	go func() { workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(p.cfg.ShutdownTimeout + p.cfg.AckTimeout):
		// A handler ignored its cancelled context; leave it behind.
	}
	bg.Wait()
	p.resendOnce() // the last workers' lost acks, if the broker is back
	if hctx.Err() != nil {
		return fmt.Errorf("%w after %s: in-flight events were cancelled and will be redelivered", ErrShutdownTimeout, p.cfg.ShutdownTimeout)
	}
	p.log.Info("processor stopped")
	return nil
}
