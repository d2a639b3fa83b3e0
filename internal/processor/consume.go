package processor

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/streams"
)

// consume keeps a Consume subscription alive until ctx ends and returns the
// current one (nil if none could be made) for the caller to drain.
func (p *Processor) consume(ctx, hctx context.Context, work chan<- delivery) jetstream.ConsumeContext {
	retry := time.Second
	for {
		cons, err := streams.EnsureConsumer(ctx, p.js, p.cfg.Consumer)
		if err == nil {
			var cc jetstream.ConsumeContext
			cc, err = cons.Consume(p.dispatch(hctx, work),
				// Prefetch a batch per worker (one message per worker without
				// batching): enough to keep them busy and to form batches,
				// few enough that prefetched messages do not sit out their
				// AckWait in the buffer (a worker takes a whole batch at once).
				jetstream.PullMaxMessages(p.cfg.prefetch(p.batchSize())),
				jetstream.ConsumeErrHandler(p.onConsumeError))
			if err == nil {
				p.log.Info("processor consuming", "stream", streams.EventsStream, "consumer", streams.ProcessorConsumer,
					"workers", p.cfg.Workers, "batch_size", p.batchSize())
				p.consuming.Store(true)
				switch p.awaitEnd(ctx, cc) {
				case consumeStopped:
					p.consuming.Store(false)
					return cc
				case consumeEnded:
					p.consuming.Store(false)
					p.log.Warn("consume subscription ended; subscribing again")
				case consumePaused:
					// The breaker closed again after a pause: pull at once.
					retry = time.Second
					continue
				case consumePausedStopped:
					return nil
				}
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.log.Error("cannot consume; retrying", "error", err, "retry_in", retry.String())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retry):
		}
		retry = min(retry*2, 30*time.Second)
	}
}

// onConsumeError logs what the pull subscription reports. Missing heartbeats
// and reconnects heal by themselves (the client pulls again); a deleted
// consumer ends the subscription, and consume creates it again.
func (p *Processor) onConsumeError(cc jetstream.ConsumeContext, err error) {
	switch {
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
		p.log.Error("processor consumer is gone; recreating it", "error", err)
		cc.Stop()
	case errors.Is(err, jetstream.ErrNoHeartbeat):
		p.log.Warn("no heartbeat from the broker; pulling again", "error", err)
	default:
		p.log.Warn("consume error", "error", err)
	}
}

// dispatch hands each message to a worker, waiting for a free one: that wait
// is the back-pressure that keeps prefetching bounded. While it waits, the
// message's AckWait clock runs, so it is kept alive with InProgress too.
func (p *Processor) dispatch(hctx context.Context, work chan<- delivery) jetstream.MessageHandler {
	every := p.cfg.progressInterval()
	return func(msg jetstream.Msg) {
		if p.park(msg) {
			return
		}
		d := delivery{msg: msg, arrived: p.cfg.Now()}
		t := time.NewTimer(every)
		defer t.Stop()
		_, breakerChanged := p.breaker.watch()
		for {
			select {
			case work <- d:
				return
			case <-breakerChanged:
				if p.park(msg) {
					return
				}
				_, breakerChanged = p.breaker.watch()
			case <-t.C:
				if err := msg.InProgress(); err != nil {
					p.m.ackErrors.WithLabelValues("in_progress").Inc()
				}
				d.arrived = p.cfg.Now() // the clock restarted
				t.Reset(every)
			case <-hctx.Done():
				// Shutdown budget spent: give the message back at once so
				// another instance takes it without waiting for AckWait.
				if err := msg.Nak(); err != nil {
					p.m.ackErrors.WithLabelValues("nak").Inc()
				}
				return
			}
		}
	}
}

// pauseWhileOpen is called by the consume loop when the breaker left the
// closed state: it drains the subscription (whatever was already pulled is
// parked by dispatch, kept alive), so nothing more is pulled, and waits until
// the breaker closes. It returns false when ctx ended meanwhile.
func (p *Processor) pauseWhileOpen(ctx context.Context, cc jetstream.ConsumeContext) bool {
	p.consuming.Store(false)
	p.log.Warn("database breaker open; stopped pulling until the database answers")
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-ctx.Done():
		return false
	}
	return p.breaker.awaitClosed(ctx)
}

// consumeEnd is why a live subscription stopped being waited on.
type consumeEnd int

// awaitEnd waits on a live subscription until ctx ends, it closes, or the
// breaker opens (then it pauses consumption until the breaker closes).
func (p *Processor) awaitEnd(ctx context.Context, cc jetstream.ConsumeContext) consumeEnd {
	_, changed := p.breaker.watch()
	for {
		select {
		case <-ctx.Done():
			return consumeStopped
		case <-cc.Closed():
			return consumeEnded
		case <-changed:
			var st BreakerState
			if st, changed = p.breaker.watch(); st == BreakerClosed {
				continue
			}
			if !p.pauseWhileOpen(ctx, cc) {
				return consumePausedStopped
			}
			return consumePaused
		}
	}
}
