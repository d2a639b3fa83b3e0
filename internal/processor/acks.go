package processor

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ackResendInterval is how often acks that failed are sent again.
const ackResendInterval = 250 * time.Millisecond

// lostAcks holds the acks of committed events that the broker did not get:
// the connection was down (the client buffers nothing while it reconnects,
// streams.Connect) or the broker did not confirm in time. Until the broker
// has the ack, the event holds its place in the group's MaxAckPending for
// AckWait; after a broker restart that was most of the window, and the whole
// group pulled next to nothing for half a minute (bench soak). Resending the
// ack once the connection is back frees the place at once. An ack is only
// ever resent for an event whose transaction committed, so however late it
// arrives (even after the broker redelivered the event to another
// instance, which then finds it already processed) it is true.
type lostAcks struct {
	mu    sync.Mutex
	acks  []lostAck
	limit int // kept at most; the oldest go first (their redelivery is nearest)
}

type lostAck struct {
	msg   jetstream.Msg
	until time.Time // AckWait after the failure: the broker redelivers by then anyway
	log   *slog.Logger
}

func newLostAcks(limit int) *lostAcks {
	return &lostAcks{limit: limit}
}

// add keeps msg's ack to send again until until.
func (l *lostAcks) add(msg jetstream.Msg, until time.Time, log *slog.Logger) {
	l.mu.Lock()
	if len(l.acks) >= l.limit {
		l.acks = append(l.acks[:0], l.acks[len(l.acks)-l.limit+1:]...)
	}
	l.acks = append(l.acks, lostAck{msg: msg, until: until, log: log})
	l.mu.Unlock()
}

// take removes and returns every kept ack.
func (l *lostAcks) take() []lostAck {
	l.mu.Lock()
	defer l.mu.Unlock()
	acks := l.acks
	l.acks = nil
	return acks
}

// resendAcks sends the lost acks again every ackResendInterval until ctx
// ends; Run makes a last attempt once its workers stopped.
func (p *Processor) resendAcks(ctx context.Context) {
	t := time.NewTicker(ackResendInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.resendOnce()
		}
	}
}

// resendOnce sends each lost ack again, keeping the ones that fail again
// while their event is not due for redelivery anyway.
func (p *Processor) resendOnce() {
	now := p.cfg.Now()
	for _, a := range p.lost.take() {
		if err := a.msg.Ack(); err != nil {
			if now.Before(a.until) {
				p.lost.add(a.msg, a.until, a.log)
			}
			continue
		}
		p.m.acksResent.Inc()
		a.log.Info("ack sent again after the broker came back")
	}
}
