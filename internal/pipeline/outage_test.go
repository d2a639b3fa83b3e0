package pipeline_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/processor"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/streams"
)

// pgProxy is a TCP proxy between the processors and the shared Postgres that
// the test can cut: while cut, every open connection is closed and new ones
// are accepted and closed at once, which is what a client sees of a database
// that went away (the shared server itself stays up for the other tests).
type pgProxy struct {
	l      net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startPGProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{l: l, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		_ = l.Close()
		p.setCut(true)
		p.wg.Wait()
	})
	return p
}

func (p *pgProxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		p.wg.Go(func() { pipe(up, c) })
		p.wg.Go(func() { pipe(c, up) })
	}
}

// setCut cuts (true) or restores (false) the database.
func (p *pgProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			_ = c.Close()
		}
	}
}

// url returns dsn with its host replaced by the proxy's.
func (p *pgProxy) url(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.l.Addr().String()
	return u.String()
}

// deliveryRecorder wraps the real handler, keeping it a BatchHandler, and
// records the highest delivery count any event reached.
type deliveryRecorder struct {
	h   handling.Handler
	max *atomic.Uint64
}

func (r deliveryRecorder) see(ev stripeevent.Event) {
	for {
		cur := r.max.Load()
		if ev.Deliveries <= cur || r.max.CompareAndSwap(cur, ev.Deliveries) {
			return
		}
	}
}

func (r deliveryRecorder) Handle(ctx context.Context, ev stripeevent.Event) (handling.Outcome, error) {
	r.see(ev)
	return r.h.Handle(ctx, ev)
}

func (r deliveryRecorder) HandleBatch(ctx context.Context, evs []stripeevent.Event) []handling.Result {
	for _, ev := range evs {
		r.see(ev)
	}
	return r.h.(handling.BatchHandler).HandleBatch(ctx, evs)
}

// startBreakerProcessor starts a processor instance as cmd/processor does,
// its database reached through dsn, with consumer's (deliberately small)
// delivery budget and a quick breaker probe; it records the highest delivery
// count any event reached in maxDelivered.
func (s *stack) startBreakerProcessor(dsn string, consumer streams.ConsumerConfig, maxDelivered *atomic.Uint64) *instance {
	return s.startProcessor(procOpts{
		dsn: dsn, consumer: &consumer,
		tune: func(c *processor.Config) {
			c.Breaker.ProbeTimeout, c.Breaker.MinBackoff, c.Breaker.MaxBackoff = time.Second, 100*time.Millisecond, 500*time.Millisecond
		},
		wrap: func(_ *instance, h handling.Handler) handling.Handler {
			if _, ok := h.(handling.BatchHandler); !ok {
				s.t.Fatal("the purchase handler is expected to take batches")
			}
			return deliveryRecorder{h: h, max: maxDelivered}
		},
	})
}

func breakerState(t *testing.T, in *instance, state string) float64 {
	return metricOf(t, in.reg, "paystream_processor_db_breaker_state", map[string]string{"state": state})
}

// The database is unreachable for many times the retry budget while
// checkouts (each sent twice, as Stripe does) keep arriving: the edge answers
// 200 throughout, the breakers open and the instances report not ready, no
// event gets anywhere near its last delivery, nothing is dead-lettered, and
// once the database is back every session has exactly one purchase.
func TestDatabaseOutageLongerThanTheRetryBudget(t *testing.T) {
	s := newStack(t)
	u, err := url.Parse(s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startPGProxy(t, u.Host)
	// Three deliveries, 150ms of backoff: without the breaker an outage of
	// a few seconds dead-letters everything that arrives during it.
	consumer := streams.ConsumerConfig{AckWait: time.Second, MaxAckPending: 64, MaxDeliver: 3,
		Backoff: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}}
	var maxDelivered atomic.Uint64
	insts := []*instance{
		s.startBreakerProcessor(proxy.url(t, s.dsn), consumer, &maxDelivered),
		s.startBreakerProcessor(proxy.url(t, s.dsn), consumer, &maxDelivered),
	}

	var sessions []string
	send := func(prefix string, i int) {
		session := fmt.Sprintf("cs_%s_%03d", prefix, i)
		id := fmt.Sprintf("evt_%s_%03d", prefix, i)
		body := s.checkout(typeCompleted, id, session, time.Now(), nil)
		for range 2 { // Stripe-style duplicate delivery
			if code := s.post(body); code != 200 {
				t.Fatalf("edge answered %d for %s, want 200 whatever the database does", code, id)
			}
		}
		sessions = append(sessions, session)
	}
	for i := range 5 {
		send("before", i)
	}
	s.waitSettled(30 * time.Second)

	proxy.setCut(true)
	const outage = 5 * time.Second // > 30× the 150ms backoff budget, 5× AckWait
	cutAt := time.Now()
	for i := 0; time.Since(cutAt) < outage; i++ {
		send("during", i)
		time.Sleep(100 * time.Millisecond)
	}
	eventually(t, 10*time.Second, "both breakers to open", func() bool {
		for _, in := range insts {
			if breakerState(t, in, "closed") == 1 {
				return false
			}
		}
		return true
	})
	for i, in := range insts {
		if ready(t, in.admin) {
			t.Errorf("instance %d: /readyz answers 200 with the database cut", i+1)
		}
	}
	if n := len(s.dlq()); n != 0 {
		t.Fatalf("%d dead letters during the outage", n)
	}
	proxy.setCut(false)

	for i := range 5 {
		send("after", i)
	}
	s.waitSettled(60 * time.Second)
	s.assertAppliedOnce(sessions, len(sessions))
	for i, in := range insts {
		if breakerState(t, in, "closed") != 1 {
			t.Errorf("instance %d breaker not closed after the outage", i+1)
		}
		if n := metricOf(t, in.reg, "paystream_processor_db_breaker_transitions_total", map[string]string{"to": "open"}); n < 1 {
			t.Errorf("instance %d: %v transitions to open, want at least 1", i+1, n)
		}
		if !ready(t, in.admin) {
			t.Errorf("instance %d: /readyz not 200 after the outage", i+1)
		}
	}
	if m := maxDelivered.Load(); m >= uint64(consumer.MaxDeliver) {
		t.Errorf("an event reached delivery %d of %d during the outage; the breaker must not spend the budget", m, consumer.MaxDeliver)
	}
	t.Logf("%d sessions, highest delivery count %d of %d", len(sessions), maxDelivered.Load(), consumer.MaxDeliver)
}
