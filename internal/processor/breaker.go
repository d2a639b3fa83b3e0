package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paystream/paystream/internal/db"
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
	MaxBackoff   time.Duration // longest wait between probes; default 10s
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

const (
	consumeStopped       consumeEnd = iota // ctx ended; the caller drains cc
	consumeEnded                           // the subscription closed by itself
	consumePaused                          // the breaker opened, cc was drained, and it closed again
	consumePausedStopped                   // the breaker opened, cc was drained, then ctx ended
)
