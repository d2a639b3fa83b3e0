package loadgen

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// load sends events for d at rps (0 = as fast as the senders go); with dups,
// a fraction is sent again as Stripe does. Every event is retried until the
// edge answers 200 or RetryFor passes, even after d ends.
func (s *soak) load(ctx context.Context, d time.Duration, rps float64, dups bool) {
	lctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var lim *rate.Limiter
	if rps > 0 {
		lim = rate.NewLimiter(rate.Limit(rps), max(1, int(rps/20)))
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: s.cfg.Concurrency * 2, IdleConnTimeout: 30 * time.Second,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}}
	defer client.CloseIdleConnections()
	var sent atomic.Int64
	s.mu.Lock()
	before := len(s.accepted)
	s.mu.Unlock()
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				s.mu.Lock()
				acc := len(s.accepted)
				s.mu.Unlock()
				backlog := "?"
				if pending, _, err := s.backlog(ctx); err == nil {
					backlog = strconv.FormatUint(pending, 10)
				}
				s.progressf("  %d new events sent, %d event ids accepted, backlog %s", sent.Load(), acc-before, backlog)
			}
		}
	}()
	defer close(stop)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var rngMu sync.Mutex
	roll := func(p float64) bool { rngMu.Lock(); defer rngMu.Unlock(); return rng.Float64() < p }
	var wg sync.WaitGroup
	for range s.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for lctx.Err() == nil {
				if lim != nil && lim.Wait(lctx) != nil {
					return
				}
				var ids IDs
				buf, ids = s.payloads.Next(buf)
				sent.Add(1)
				// Retries outlive the load window, bounded by RetryFor.
				s.deliver(ctx, client, buf, ids.Event, ids.Session)
				if dups && roll(s.cfg.DupRetry) {
					s.count1(&s.rep.DupRetries)
					s.deliver(ctx, client, buf, ids.Event, ids.Session)
				}
				if dups && roll(s.cfg.DupSession) {
					body, evt := s.payloads.Reissue(buf)
					s.count1(&s.rep.DupSessions)
					s.deliver(ctx, client, body, evt, ids.Session)
				}
			}
		}()
	}
	wg.Wait()
}

func (s *soak) count1(n *int) { s.mu.Lock(); *n++; s.mu.Unlock() }

// deliver posts body until the edge answers 200, as Stripe retries a
// refused webhook (here within seconds rather than hours), for at most
// RetryFor.
func (s *soak) deliver(ctx context.Context, client *http.Client, body []byte, event, session string) {
	deadline := time.Now().Add(s.cfg.RetryFor)
	target := "http://" + s.edge.addr + "/webhooks/stripe"
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		status := "transport_error"
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		req.Header.Set("Stripe-Signature", Sign(body, s.edge.secret, time.Now()))
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			status = strconv.Itoa(resp.StatusCode)
		} else if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		s.rep.Requests++
		s.rep.ByStatus[status]++
		if attempt > 0 {
			s.rep.Retries++
		}
		if status == "200" {
			s.accepted[event] = true
			s.sessions[session] = true
		}
		s.mu.Unlock()
		if status == "200" {
			return
		}
		if time.Now().After(deadline) {
			s.count1(&s.rep.GivenUp)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}
