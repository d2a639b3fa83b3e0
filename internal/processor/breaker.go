package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/handling"
)

// BreakerConfig shapes the instance's database circuit breaker. An outage of
// the store is not a poison event: while the breaker is open the instance
// stops pulling, keeps the messages it holds alive with InProgress (which does
// not count a delivery), and a probe asks the database with a growing wait
// until it answers. Without a Probe the breaker is off and store failures are
// retried like any transient error, spending the event's delivery budget.
type BreakerConfig struct {
	// Probe reports whether the database is usable again (e.g. a ping and a
	// check that it is not a read-only replica). nil turns the breaker off.
	Probe        func(ctx context.Context) error
	ProbeTimeout time.Duration // bound of one probe; default 2s
	MinBackoff   time.Duration // wait before the first probe; default 250ms
	MaxBackoff   time.Duration // longest wait between probes; default 10s (PROCESSOR_BREAKER_MAX_BACKOFF)
}

func (c *BreakerConfig) setDefaults() {
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = 2 * time.Second
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 250 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 10 * time.Second
	}
}

func (c BreakerConfig) validate() error {
	switch {
	case c.ProbeTimeout <= 0 || c.MinBackoff <= 0:
		return errors.New("processor: breaker probe timeout and backoff must be positive")
	case c.MaxBackoff < c.MinBackoff:
		return fmt.Errorf("processor: breaker max backoff %s is below its min backoff %s", c.MaxBackoff, c.MinBackoff)
	}
	return nil
}

// BreakerState is the state of the database circuit breaker.
type BreakerState int

// Breaker states.
const (
	BreakerClosed   BreakerState = iota // the database answers; events flow
	BreakerOpen                         // the database is down; nothing is pulled or handled
	BreakerHalfOpen                     // a probe is asking the database
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	default:
		return "half_open"
	}
}

var breakerStates = []BreakerState{BreakerClosed, BreakerOpen, BreakerHalfOpen}

// breakerMetrics are the breaker's series.
type breakerMetrics struct {
	state       *prometheus.GaugeVec   // {state}: 1 for the current one
	transitions *prometheus.CounterVec // {to}
	held        prometheus.Gauge
}

func newBreakerMetrics() *breakerMetrics {
	m := &breakerMetrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "paystream_processor_db_breaker_state",
			Help: "Database circuit breaker state of this instance: 1 for the current state (closed, open, half_open).",
		}, []string{"state"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_processor_db_breaker_transitions_total",
			Help: "Database circuit breaker transitions, by the state entered.",
		}, []string{"to"}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paystream_processor_db_breaker_held_messages",
			Help: "Messages this instance keeps alive with InProgress while the database breaker is not closed.",
		}),
	}
	m.set(BreakerClosed)
	// Every transition series exists from the start at 0, so increase()
	// reads 0 on the dashboard and in the alert rather than no data.
	for _, st := range breakerStates {
		m.transitions.WithLabelValues(st.String())
	}
	return m
}

func (m *breakerMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.state, m.transitions, m.held}
}

func (m *breakerMetrics) set(s BreakerState) {
	for _, st := range breakerStates {
		v := 0.0
		if st == s {
			v = 1
		}
		m.state.WithLabelValues(st.String()).Set(v)
	}
}

// breaker is the instance's database circuit breaker, shared by its workers,
// its consume loop and its readiness check. A nil *breaker is off: it never
// opens and never holds anything.
type breaker struct {
	cfg BreakerConfig
	m   *breakerMetrics
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	state   BreakerState
	since   time.Time
	cause   error
	changed chan struct{} // closed and replaced at every transition
	kick    chan struct{} // wakes the probe loop after a trip
	stop    <-chan struct{}
}

func newBreaker(cfg BreakerConfig, m *breakerMetrics, log *slog.Logger, now func() time.Time) *breaker {
	if cfg.Probe == nil {
		return nil
	}
	return &breaker{cfg: cfg, m: m, log: log.With("component", "db_breaker"), now: now, since: now(),
		changed: make(chan struct{}), kick: make(chan struct{}, 1)}
}

// watch returns the current state and a channel closed at the next change.
func (b *breaker) watch() (BreakerState, <-chan struct{}) {
	if b == nil {
		return BreakerClosed, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state, b.changed
}

// setLocked moves to s; b.mu is held.
func (b *breaker) setLocked(s BreakerState, cause error) {
	if b.state == s {
		return
	}
	prev, held := b.state, b.now().Sub(b.since)
	b.state, b.since = s, b.now()
	if cause != nil {
		b.cause = cause
	}
	close(b.changed)
	b.changed = make(chan struct{})
	b.m.set(s)
	b.m.transitions.WithLabelValues(s.String()).Inc()
	switch s {
	case BreakerOpen:
		b.log.Error("database breaker open: the store is unavailable; pausing consumption and holding in-flight events",
			"from", prev.String(), "error", errText(cause))
	case BreakerHalfOpen:
		b.log.Info("database breaker half-open: probing the database", "from", prev.String())
	case BreakerClosed:
		b.log.Info("database breaker closed: the database answers; resuming", "from", prev.String(),
			"outage", held.String())
	}
}

// trip opens a closed breaker because of err and wakes the probe loop.
func (b *breaker) trip(err error) {
	b.mu.Lock()
	if b.state == BreakerClosed {
		b.setLocked(BreakerOpen, err)
	}
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// suspect reports whether err means the store, not the event, failed; if so
// the breaker is open when it returns. Errors on the db.StoreUnavailable
// list trip it at once; a deadline (a slow query looks like a dead server)
// trips it only if the probe fails too.
func (b *breaker) suspect(ctx context.Context, err error) bool {
	if b == nil || err == nil {
		return false
	}
	if db.StoreUnavailable(err) {
		b.trip(err)
		return true
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if st, _ := b.watch(); st != BreakerClosed {
		return true
	}
	if perr := b.probe(ctx); perr != nil {
		b.trip(fmt.Errorf("%w (probe: %w)", err, perr))
		return true
	}
	return false
}

func (b *breaker) probe(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, b.cfg.ProbeTimeout)
	defer cancel()
	return b.cfg.Probe(pctx)
}

// run is the probe loop: after a trip it waits, probes (half-open), and
// closes the breaker on the first answer, waiting twice as long after each
// failed probe, up to MaxBackoff. It returns when ctx ends, which also
// releases everything waiting in hold.
func (b *breaker) run(ctx context.Context) {
	if b == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.kick:
		}
		wait := b.cfg.MinBackoff
		for {
			if st, _ := b.watch(); st == BreakerClosed {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			b.mu.Lock()
			b.setLocked(BreakerHalfOpen, nil)
			b.mu.Unlock()
			err := b.probe(ctx)
			b.mu.Lock()
			if err == nil {
				b.setLocked(BreakerClosed, nil)
			} else {
				b.setLocked(BreakerOpen, err)
			}
			b.mu.Unlock()
			if err != nil {
				b.log.Warn("database probe failed; breaker stays open", "error", err, "retry_in", wait.String())
			}
			wait = min(wait*2, b.cfg.MaxBackoff)
		}
	}
}

// check is the readiness view: an error while the breaker is not closed.
func (b *breaker) check() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerClosed {
		return nil
	}
	return fmt.Errorf("database breaker %s for %s: %v", b.state, b.now().Sub(b.since).Round(time.Millisecond), b.cause)
}

// awaitClosed blocks until the breaker is closed (true), or until the
// instance stops or hctx ends (false).
func (b *breaker) awaitClosed(hctx context.Context) bool {
	if b == nil {
		return true
	}
	for {
		st, changed := b.watch()
		if st == BreakerClosed {
			return true
		}
		select {
		case <-changed:
		case <-b.stop:
			return false
		case <-hctx.Done():
			return false
		}
	}
}

// hold keeps msgs alive with InProgress while the breaker is not closed. It
// returns true once the breaker closed (handle the messages now) and false
// when the instance is stopping (the caller settles them as usual).
func (p *Processor) hold(hctx context.Context, msgs []jetstream.Msg, log *slog.Logger) bool {
	b := p.breaker
	if st, _ := b.watch(); st == BreakerClosed {
		return true
	}
	b.m.held.Add(float64(len(msgs)))
	defer b.m.held.Sub(float64(len(msgs)))
	// How long ago each message last had InProgress is not known here (a
	// batch may have waited in the queue): signal at once, then regularly.
	stop := p.keepAlive(hctx, msgs, time.Time{}, log)
	defer stop()
	return b.awaitClosed(hctx)
}

// maxStoreRounds bounds how often one delivery is held and handled again
// for store errors: an event that itself breaks the connection must not be
// held forever.
const maxStoreRounds = 20

// rehandleWhileStoreDown takes the results of handling evs (delivered as
// msgs) and, as long as some of them failed because the store is down, holds
// those messages until the breaker closes and handles them again with again.
// The retry budget is thus spent only on failures of the events themselves.
func (p *Processor) rehandleWhileStoreDown(hctx context.Context, msgs []jetstream.Msg, evs []handling.Event,
	results []handling.Result, again func([]handling.Event) []handling.Result) []handling.Result {
	if p.breaker == nil {
		return results
	}
	for round := 1; ; round++ {
		var idx []int
		for i, r := range results {
			if p.breaker.suspect(hctx, r.Err) {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			return results
		}
		if round > maxStoreRounds {
			// The database answers the probe every time and these events
			// still fail as if it were down: they are the problem, not
			// the store. Let the retry budget decide.
			p.log.Warn("events keep failing with store errors while the database answers; retrying them normally",
				"events", len(idx), "rounds", round-1)
			return results
		}
		held := make([]jetstream.Msg, len(idx))
		retry := make([]handling.Event, len(idx))
		for j, i := range idx {
			held[j], retry[j] = msgs[i], evs[i]
		}
		if !p.hold(hctx, held, p.log) {
			return results // stopping: the store errors are settled as retries
		}
		res := again(retry)
		for j, i := range idx {
			results[i] = res[j]
		}
	}
}

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

// heldMsgs returns the messages of ds.
func heldMsgs(ds []delivery) []jetstream.Msg {
	msgs := make([]jetstream.Msg, len(ds))
	for i, d := range ds {
		msgs[i] = d.msg
	}
	return msgs
}

// rehandleOne is rehandleWhileStoreDown for a single delivery.
func (p *Processor) rehandleOne(hctx context.Context, msg jetstream.Msg, ev handling.Event,
	outcome handling.Outcome, err error) (handling.Outcome, error) {
	r := p.rehandleWhileStoreDown(hctx, []jetstream.Msg{msg}, []handling.Event{ev},
		[]handling.Result{{Outcome: outcome, Err: err}}, func(evs []handling.Event) []handling.Result {
			o, e := p.handle(hctx, evs[0])
			return []handling.Result{{Outcome: o, Err: e}}
		})
	return r[0].Outcome, r[0].Err
}

// consumeEnd is why a live subscription stopped being waited on.
type consumeEnd int

const (
	consumeStopped       consumeEnd = iota // ctx ended; the caller drains cc
	consumeEnded                           // the subscription closed by itself
	consumePaused                          // the breaker opened, cc was drained, and it closed again
	consumePausedStopped                   // the breaker opened, cc was drained, then ctx ended
)

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
