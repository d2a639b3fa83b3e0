package processor

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// work is one worker. It takes the right to form the next batch, takes a
// delivery plus whatever else is already waiting up to the batch size, and
// hands the forming on before handling them, so another worker gathers the
// next batch meanwhile. A batch that is not full starts at once only while
// fewer than PartialBatches such batches are in handling; otherwise the
// worker keeps gathering until the batch is full or a slot frees. At light
// load that never delays anything (a slot is free); under load it turns many
// one-event transactions into a few full ones. When stopped, a worker first
// handles what is left in the queue, or gives it back at once if the shutdown
// budget is spent.
func (p *Processor) work(hctx context.Context, work <-chan delivery, stop <-chan struct{}) {
	batch := make([]delivery, 0, p.batchSize())
	for {
		select {
		case p.forming <- struct{}{}:
		case <-stop:
			p.drainQueue(hctx, work, batch)
			return
		}
		var d delivery
		select {
		case d = <-work:
		case <-stop:
			<-p.forming
			p.drainQueue(hctx, work, batch)
			return
		}
		batch = p.fill(append(batch[:0], d), work)
		slot := false
		if len(batch) < p.batchSize() {
			batch, slot = p.awaitPartialSlot(batch, work)
		}
		<-p.forming
		p.processBatch(hctx, batch)
		if slot {
			<-p.partial
		}
	}
}

// drainQueue handles (or, with the shutdown budget spent, gives back) what is
// left in the queue at stop, without the partial-batch limit: every worker
// helps, so the queue empties as fast as the handler allows.
func (p *Processor) drainQueue(hctx context.Context, work <-chan delivery, batch []delivery) {
	for {
		select {
		case d := <-work:
			if hctx.Err() != nil {
				if err := d.msg.Nak(); err != nil {
					p.m.ackErrors.WithLabelValues("nak").Inc()
				}
				continue
			}
			p.processBatch(hctx, p.fill(append(batch[:0], d), work))
		default:
			return
		}
	}
}

// awaitPartialSlot takes a partial-batch slot for batch, gathering the events
// that arrive meanwhile. It returns when the batch is full (no slot needed),
// when a slot is taken (the batch then takes what waits, up to full), or
// after MaxPartialWait without one (it goes anyway, without a slot).
func (p *Processor) awaitPartialSlot(batch []delivery, work <-chan delivery) ([]delivery, bool) {
	select {
	case p.partial <- struct{}{}:
		return batch, true
	default:
	}
	t := time.NewTimer(p.cfg.partialWait)
	defer t.Stop()
	for len(batch) < p.batchSize() {
		select {
		case d := <-work:
			batch = append(batch, d)
		case p.partial <- struct{}{}:
			return p.topUp(batch, work), true
		case <-t.C:
			return batch, false
		}
	}
	return batch, false
}

// topUp appends the deliveries already waiting in work, up to the batch size,
// without waiting.
func (p *Processor) topUp(batch []delivery, work <-chan delivery) []delivery {
	for len(batch) < p.batchSize() {
		select {
		case d := <-work:
			batch = append(batch, d)
		default:
			return batch
		}
	}
	return batch
}

// fill appends the deliveries already waiting in work, up to the batch size.
// When the queue runs dry before the batch is full but the consumer has a
// backlog (more messages are on their way in the next pull), it waits up to
// BatchWait for them; at light load (no backlog) it never waits.
func (p *Processor) fill(batch []delivery, work <-chan delivery) []delivery {
	var deadline <-chan time.Time
	for {
		batch = p.topUp(batch, work)
		if len(batch) >= p.batchSize() {
			return batch
		}
		if deadline == nil {
			if p.cfg.BatchWait <= 0 || !backlog(batch[len(batch)-1].msg) {
				return batch
			}
			t := time.NewTimer(p.cfg.BatchWait)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case d := <-work:
			batch = append(batch, d)
		case <-deadline:
			return batch
		}
	}
}

// backlog reports whether the consumer had messages pending beyond msg when
// it was delivered.
func backlog(msg jetstream.Msg) bool {
	md, err := msg.Metadata()
	return err == nil && md.NumPending > 0
}
