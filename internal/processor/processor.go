package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/obs"
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
		forming: make(chan struct{}, 1), partial: make(chan struct{}, cfg.PartialBatches)}
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
	if hctx.Err() != nil {
		return fmt.Errorf("%w after %s: in-flight events were cancelled and will be redelivered", ErrShutdownTimeout, p.cfg.ShutdownTimeout)
	}
	p.log.Info("processor stopped")
	return nil
}

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

	type item struct {
		msg  jetstream.Msg
		md   *jetstream.MsgMetadata
		ev   handling.Event
		typ  string
		log  *slog.Logger
		ctx  context.Context // carries span
		span trace.Span      // nil with tracing off
	}
	items := make([]item, 0, len(ds))
	arrived := ds[0].arrived
	for _, d := range ds {
		md, err := d.msg.Metadata()
		if err != nil {
			p.log.Error("message without JetStream metadata dropped from this instance", "subject", d.msg.Subject(), "error", err)
			continue
		}
		log := p.log.With("stripe_event_id", d.msg.Headers().Get(streams.HeaderEventID), "subject", d.msg.Subject(),
			"num_delivered", md.NumDelivered, "stream_seq", md.Sequence.Stream)
		ictx, span := startSpan(hctx, d.msg, md, len(ds))
		ev, err := decodeEvent(d.msg.Subject(), d.msg.Headers(), d.msg.Data(), md.NumDelivered)
		if err != nil {
			// Never reaches the handler: classified and settled on its own.
			typ := typeLabel(ev.Type)
			dec := Classify(err, md.NumDelivered, p.cfg.Consumer)
			p.apply(d.msg, md, ev, typ, "", err, dec, log)
			endSpan(span, dec, "", err)
			continue
		}
		if d.arrived.Before(arrived) {
			arrived = d.arrived
		}
		items = append(items, item{msg: d.msg, md: md, ev: ev, typ: typeLabel(ev.Type), log: log, ctx: ictx, span: span})
	}
	if len(items) == 0 {
		return
	}
	msgs := make([]jetstream.Msg, len(items))
	evs := make([]handling.Event, len(items))
	for i, it := range items {
		msgs[i], evs[i] = it.msg, it.ev
	}
	stop := p.keepAlive(hctx, msgs, arrived, p.log)
	start := p.cfg.Now()
	// One transaction for the batch: its spans join the first event's trace,
	// and so do the re-handlings while the store is down.
	bctx := items[0].ctx
	results := p.rehandleWhileStoreDown(hctx, msgs, evs, p.handleBatch(bctx, evs), func(evs []handling.Event) []handling.Result {
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
	for i, it := range items {
		p.m.handleDuration.WithLabelValues(it.typ).Observe(took)
		r := results[i]
		dec := Classify(r.Err, it.md.NumDelivered, p.cfg.Consumer)
		if dec.Verdict == Ack {
			p.settle(it.msg, it.md, it.ev, it.typ, r.Outcome, r.Err, dec, it.log, false)
			endSpan(it.span, dec, r.Outcome, r.Err)
			continue
		}
		settle.Go(func() {
			p.apply(it.msg, it.md, it.ev, it.typ, r.Outcome, r.Err, dec, it.log)
			endSpan(it.span, dec, r.Outcome, r.Err)
		})
	}
	settle.Wait()
}

// handleBatch calls the BatchHandler with a deadline. A panic, or a handler
// that breaks the contract by returning the wrong number of results, must not
// fail the whole batch: each event is then handled alone (where a panic
// fails only its own event).
func (p *Processor) handleBatch(hctx context.Context, evs []handling.Event) []handling.Result {
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
	msg := d.msg
	md, err := msg.Metadata()
	if err != nil {
		// Not a JetStream delivery (no ack subject); nothing can be acked.
		p.log.Error("message without JetStream metadata dropped from this instance", "subject", msg.Subject(), "error", err)
		return
	}
	log := p.log.With("stripe_event_id", msg.Headers().Get(streams.HeaderEventID), "subject", msg.Subject(),
		"num_delivered", md.NumDelivered, "stream_seq", md.Sequence.Stream)
	hctx, span := startSpan(hctx, msg, md, 1)

	ev, err := decodeEvent(msg.Subject(), msg.Headers(), msg.Data(), md.NumDelivered)
	typ := typeLabel(ev.Type)
	var outcome handling.Outcome
	if err == nil {
		stop := p.keepAlive(hctx, []jetstream.Msg{msg}, d.arrived, log)
		start := p.cfg.Now()
		outcome, err = p.handle(hctx, ev)
		obs.Observe(hctx, p.m.handleDuration.WithLabelValues(typ), p.cfg.Now().Sub(start).Seconds())
		stop()
		if p.breaker != nil && err != nil {
			outcome, err = p.rehandleOne(hctx, msg, ev, outcome, err)
		}
	}
	dec := Classify(err, md.NumDelivered, p.cfg.Consumer)
	p.apply(msg, md, ev, typ, outcome, err, dec, log)
	endSpan(span, dec, outcome, err)
}

// handle calls the handler with a deadline, turning a panic into an Internal
// error so one poison event cannot crash the instance (and every event in
// flight with it).
func (p *Processor) handle(hctx context.Context, ev handling.Event) (out handling.Outcome, err error) {
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

// apply carries out a decision. Acks of single events wait for the broker's
// confirmation (DoubleAck), so a lost ack shows up in logs and metrics; the
// handler's idempotency makes the redelivery that follows harmless.
func (p *Processor) apply(msg jetstream.Msg, md *jetstream.MsgMetadata, ev handling.Event, typ string,
	outcome handling.Outcome, herr error, dec Decision, log *slog.Logger) {
	p.settle(msg, md, ev, typ, outcome, herr, dec, log, true)
}

// settle is apply; confirm false sends an Ack without waiting for the
// broker's confirmation (a batch's acks).
func (p *Processor) settle(msg jetstream.Msg, md *jetstream.MsgMetadata, ev handling.Event, typ string,
	outcome handling.Outcome, herr error, dec Decision, log *slog.Logger, confirm bool) {
	actx, cancel := context.WithTimeout(context.Background(), p.cfg.AckTimeout)
	defer cancel()
	switch dec.Verdict {
	case Ack:
		label, known := outcomeLabel(outcome)
		if !known {
			log.Warn("handler returned an unknown outcome; counted as applied", "handler_outcome", string(outcome))
		}
		p.m.events.WithLabelValues(typ, label).Inc()
		ack := msg.Ack
		if confirm {
			ack = func() error { return msg.DoubleAck(actx) }
		}
		if err := ack(); err != nil {
			p.m.ackErrors.WithLabelValues("ack").Inc()
			log.Error("ack failed; the event will be redelivered and found already processed", "outcome", label, "error", err)
			return
		}
		// A DLQ replay keeps the original receipt time; the days it spent
		// waiting for a human are not pipeline latency.
		if !ev.ReceivedAt.IsZero() && msg.Headers().Get(streams.HeaderSource) != "dlq-replay" {
			p.m.endToEnd.Observe(max(p.cfg.Now().Sub(ev.ReceivedAt), 0).Seconds())
		}
		log.Debug("event handled", "outcome", label, "type", ev.Type)

	case Retry:
		p.m.events.WithLabelValues(typ, outcomeRetried).Inc()
		log.Warn("event failed transiently; retrying", "outcome", outcomeRetried, "error", herr,
			"code", string(fault.CodeOf(herr)), "retry_in", dec.Delay.String())
		if err := msg.NakWithDelay(dec.Delay); err != nil {
			p.m.ackErrors.WithLabelValues("nak").Inc()
			log.Error("nak failed; the event will be redelivered after AckWait", "error", err)
		}

	case DeadLetter:
		res, err := streams.PublishLetter(actx, p.js, streams.Letter{
			Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data(), StreamSeq: md.Sequence.Stream,
			Reason: dec.Reason, LastError: errText(herr), Deliveries: md.NumDelivered, At: p.cfg.Now(),
		})
		if err != nil {
			// Never Term without a DLQ copy: try again later. On the last
			// delivery the broker then emits MAX_DELIVERIES and the
			// advisory listener makes the copy.
			p.m.ackErrors.WithLabelValues("dlq_publish").Inc()
			p.m.events.WithLabelValues(typ, outcomeRetried).Inc()
			delay := p.cfg.Consumer.NakDelay(md.NumDelivered)
			log.Error("dead-letter copy failed; retrying the event", "outcome", outcomeRetried, "reason", dec.Reason,
				"handler_error", errText(herr), "error", err, "retry_in", delay.String())
			if err := msg.NakWithDelay(delay); err != nil {
				p.m.ackErrors.WithLabelValues("nak").Inc()
			}
			return
		}
		p.m.events.WithLabelValues(typ, outcomeDeadLettered).Inc()
		if !res.Duplicate {
			p.m.deadLetters.WithLabelValues(dec.Reason).Inc()
		}
		log.Error("event dead-lettered", "outcome", outcomeDeadLettered, "reason", dec.Reason, "error", herr,
			"dlq_seq", res.Sequence)
		if err := msg.TermWithReason(dec.Reason); err != nil {
			// The copy exists; a redelivery will be dead-lettered again and
			// deduplicated by its dlq-<seq> id.
			p.m.ackErrors.WithLabelValues("term").Inc()
			log.Error("term failed after the dead-letter copy", "error", err)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
