package processor

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/streams"
)

// processBatch handles deliveries taken together: one alone goes through
// process; several that decode go to the BatchHandler in one call, and each
// is then acked, retried or dead-lettered by its own result, with the same
// classification as a single event.
func (p *Processor) processBatch(hctx context.Context, ds []delivery) {
	if !p.hold(hctx, heldMsgs(ds), p.log) {
		// Stopping while the database is down: give them back at once.
		for _, d := range ds {
			if err := d.msg.Nak(); err != nil {
				p.m.ackErrors.WithLabelValues("nak").Inc()
			}
		}
		return
	}
	p.m.batchSize.Observe(float64(len(ds)))
	if len(ds) == 1 {
		p.process(hctx, ds[0])
		return
	}
	p.m.inFlight.Add(float64(len(ds)))
	defer p.m.inFlight.Sub(float64(len(ds)))

	items := make([]received, 0, len(ds))
	arrived := ds[0].arrived
	for _, d := range ds {
		r, ok := p.receive(hctx, d.msg, len(ds))
		if !ok {
			continue
		}
		if r.err != nil {
			// Never reaches the handler: classified and settled on its own.
			r.dec = Classify(r.err, r.md.NumDelivered, p.cfg.Consumer)
			p.finish(r, true)
			continue
		}
		if d.arrived.Before(arrived) {
			arrived = d.arrived
		}
		items = append(items, r)
	}
	if len(items) == 0 {
		return
	}
	msgs := make([]jetstream.Msg, len(items))
	evs := make([]stripeevent.Event, len(items))
	for i, r := range items {
		msgs[i], evs[i] = r.msg, r.ev
	}
	stop := p.keepAlive(hctx, msgs, arrived, p.log)
	start := p.cfg.Now()
	// One transaction for the batch: its spans join the first event's trace,
	// and so do the re-handlings while the store is down.
	bctx := items[0].ctx
	results := p.rehandleWhileStoreDown(hctx, msgs, evs, p.handleBatch(bctx, evs), func(evs []stripeevent.Event) []handling.Result {
		return p.handleBatch(bctx, evs)
	})
	// Every event of the batch waited for the batch's commit: that is its
	// handling time.
	took := p.cfg.Now().Sub(start).Seconds()
	stop()
	// Acks of a batch are not confirmed (Ack, not DoubleAck): they leave in
	// the client's write buffer, without a broker round trip each, and a
	// lost one only brings a redelivery the handler finds done. The other
	// verdicts (a nak, a DLQ copy) still wait, concurrently.
	var settle sync.WaitGroup
	for i, r := range items {
		p.m.handleDuration.WithLabelValues(r.typ).Observe(took)
		r.outcome, r.err = results[i].Outcome, results[i].Err
		r.dec = Classify(r.err, r.md.NumDelivered, p.cfg.Consumer)
		if r.dec.Verdict == Ack {
			p.finish(r, false)
			continue
		}
		settle.Go(func() { p.finish(r, true) })
	}
	settle.Wait()
}

// handleBatch calls the BatchHandler with a deadline. A panic, or a handler
// that breaks the contract by returning the wrong number of results, must not
// fail the whole batch: each event is then handled alone (where a panic
// fails only its own event).
func (p *Processor) handleBatch(hctx context.Context, evs []stripeevent.Event) []handling.Result {
	results, ok := func() (res []handling.Result, ok bool) {
		ctx, cancel := context.WithTimeout(hctx, p.cfg.HandleTimeout)
		defer cancel()
		defer func() {
			if r := recover(); r != nil {
				p.log.Error("batch handler panicked; handling the batch one event at a time", "events", len(evs),
					"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				ok = false
			}
		}()
		res = p.bh.HandleBatch(ctx, evs)
		if len(res) != len(evs) {
			p.log.Error("batch handler returned the wrong number of results; handling the batch one event at a time",
				"events", len(evs), "results", len(res))
			return nil, false
		}
		return res, true
	}()
	if ok {
		return results
	}
	results = make([]handling.Result, len(evs))
	for i, ev := range evs {
		results[i].Outcome, results[i].Err = p.handle(hctx, ev)
	}
	return results
}

// process handles one delivery end to end.
func (p *Processor) process(hctx context.Context, d delivery) {
	p.m.inFlight.Inc()
	defer p.m.inFlight.Dec()
	r, ok := p.receive(hctx, d.msg, 1)
	if !ok {
		return
	}
	if r.err == nil {
		stop := p.keepAlive(r.ctx, []jetstream.Msg{r.msg}, d.arrived, r.log)
		start := p.cfg.Now()
		r.outcome, r.err = p.handle(r.ctx, r.ev)
		obs.Observe(r.ctx, p.m.handleDuration.WithLabelValues(r.typ), p.cfg.Now().Sub(start).Seconds())
		stop()
		if p.breaker != nil && r.err != nil {
			r.outcome, r.err = p.rehandleOne(r.ctx, r.msg, r.ev, r.outcome, r.err)
		}
	}
	r.dec = Classify(r.err, r.md.NumDelivered, p.cfg.Consumer)
	p.finish(r, true)
}

// received is a delivery whose headers were read, on its way through the
// handler to settle.
type received struct {
	settlement
	ctx  context.Context // hctx with the span of the event's handling
	span trace.Span      // nil with tracing off
}

// receive reads msg's metadata and headers and starts the span of its
// handling; batch is the number of events handled with it. A header error is
// left in r.err, for the caller to settle without the handler. ok is false
// for a message that is not a JetStream delivery: it has no ack subject, so
// nothing can be done with it but drop it from this instance.
func (p *Processor) receive(hctx context.Context, msg jetstream.Msg, batch int) (r received, ok bool) {
	md, err := msg.Metadata()
	if err != nil {
		p.log.Error("message without JetStream metadata dropped from this instance", "subject", msg.Subject(), "error", err)
		return r, false
	}
	r.msg, r.md = msg, md
	r.log = p.log.With("stripe_event_id", msg.Headers().Get(streams.HeaderEventID), "subject", msg.Subject(),
		"num_delivered", md.NumDelivered, "stream_seq", md.Sequence.Stream)
	r.ctx, r.span = startSpan(hctx, msg, md, batch)
	r.ev, r.err = decodeEvent(msg.Subject(), msg.Headers(), msg.Data(), md.NumDelivered)
	r.typ = typeLabel(r.ev.Type)
	return r, true
}

// finish settles r by its decision and ends its span.
func (p *Processor) finish(r received, confirm bool) {
	p.settle(r.settlement, confirm)
	endSpan(r.span, r.dec, r.outcome, r.err)
}

// handle calls the handler with a deadline, turning a panic into an Internal
// error so one poison event cannot crash the instance (and every event in
// flight with it).
func (p *Processor) handle(hctx context.Context, ev stripeevent.Event) (out handling.Outcome, err error) {
	ctx, cancel := context.WithTimeout(hctx, p.cfg.HandleTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("handler panicked", "stripe_event_id", ev.ID, "subject", ev.Subject, "panic", fmt.Sprint(r),
				"stack", string(debug.Stack()))
			out, err = "", fault.New(fault.Internal, "handler_panic", "handler panicked: %v", r)
		}
	}()
	return p.h.Handle(ctx, ev)
}

// keepAlive sends InProgress for msgs while the handler runs, so a slow
// handler does not see its messages redelivered to another instance. The
// first one goes out at once if the oldest message already waited a while in
// the prefetch buffer.
func (p *Processor) keepAlive(hctx context.Context, msgs []jetstream.Msg, arrived time.Time, log *slog.Logger) (stop func()) {
	every := p.cfg.progressInterval()
	ctx, cancel := context.WithCancel(hctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		first := every - p.cfg.Now().Sub(arrived)
		t := time.NewTimer(max(first, 0))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				for _, msg := range msgs {
					if err := msg.InProgress(); err != nil {
						p.m.ackErrors.WithLabelValues("in_progress").Inc()
						log.Warn("in-progress signal failed", "subject", msg.Subject(), "error", err)
					}
				}
				t.Reset(every)
			}
		}
	}()
	return func() { cancel(); <-done }
}
