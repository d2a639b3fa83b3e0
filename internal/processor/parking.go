package processor

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// parking keeps the messages the consume callback received while the
// breaker was not closed, alive with InProgress, until they can go to the
// workers. Draining the subscription into it is what lets the instance stop
// pulling without a single message waiting out its AckWait in a buffer.
type parking struct {
	mu    sync.Mutex
	msgs  []jetstream.Msg
	ready chan struct{} // signalled when a message is parked
}

func newParking() *parking { return &parking{ready: make(chan struct{}, 1)} }

func (pk *parking) put(msg jetstream.Msg) {
	pk.mu.Lock()
	pk.msgs = append(pk.msgs, msg)
	pk.mu.Unlock()
	select {
	case pk.ready <- struct{}{}:
	default:
	}
}

func (pk *parking) snapshot() []jetstream.Msg {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	return append([]jetstream.Msg(nil), pk.msgs...)
}

func (pk *parking) pop() (jetstream.Msg, bool) {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	if len(pk.msgs) == 0 {
		return nil, false
	}
	m := pk.msgs[0]
	pk.msgs = pk.msgs[1:]
	return m, true
}

// tendParking keeps the parked messages alive, hands them to the workers
// (through dispatch, oldest first) whenever the breaker is closed, and gives
// them back to the broker when the instance stops. When the breaker opens it
// also parks what waits in the work queue: nothing keeps those alive there,
// and the workers are busy holding their own.
func (p *Processor) tendParking(ctx, hctx context.Context, work chan delivery) {
	pk := p.parked
	var wg sync.WaitGroup
	defer wg.Wait()
	kctx, stopKeep := context.WithCancel(ctx)
	defer stopKeep()
	wg.Go(func() {
		t := time.NewTicker(p.cfg.progressInterval())
		defer t.Stop()
		for {
			select {
			case <-kctx.Done():
				return
			case <-t.C:
				for _, msg := range pk.snapshot() {
					if err := msg.InProgress(); err != nil {
						p.m.ackErrors.WithLabelValues("in_progress").Inc()
					}
				}
			}
		}
	})
	feed := p.dispatch(hctx, work)
	for {
		st, changed := p.breaker.watch()
		for st == BreakerClosed && ctx.Err() == nil {
			msg, ok := pk.pop()
			if !ok {
				break
			}
			p.breaker.m.held.Dec()
			feed(msg) // parks it again if the breaker opened meanwhile
			st, changed = p.breaker.watch()
		}
		if st != BreakerClosed {
			p.parkQueued(work)
		}
		select {
		case <-ctx.Done():
			stopKeep()
			for {
				msg, ok := pk.pop()
				if !ok {
					return
				}
				p.breaker.m.held.Dec()
				if err := msg.Nak(); err != nil {
					p.m.ackErrors.WithLabelValues("nak").Inc()
				}
			}
		case <-changed:
		case <-pk.ready:
		}
	}
}

// parkQueued moves the deliveries waiting in the work queue to parking.
func (p *Processor) parkQueued(work chan delivery) {
	for {
		select {
		case d := <-work:
			// It may have waited in the queue for a while: restart its
			// clock now, the parking ticker takes over from here.
			if err := d.msg.InProgress(); err != nil {
				p.m.ackErrors.WithLabelValues("in_progress").Inc()
			}
			p.breaker.m.held.Inc()
			p.parked.put(d.msg)
		default:
			return
		}
	}
}

// park keeps msg for later if the breaker is not closed, reporting whether
// it did.
func (p *Processor) park(msg jetstream.Msg) bool {
	if st, _ := p.breaker.watch(); st == BreakerClosed {
		return false
	}
	p.breaker.m.held.Inc()
	p.parked.put(msg)
	return true
}
