package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/streams"
)

// EdgeConfig drives `paystream bench edge`.
type EdgeConfig struct {
	URL         string        // edge webhook URL, e.g. http://127.0.0.1:8080/webhooks/stripe
	Secret      string        // the endpoint's signing secret
	Endpoint    string        // endpoint name of URL (default), for the baseline's subject
	Concurrency int           // workers, each with one request in flight
	Duration    time.Duration // per measured run
	Rate        float64       // requests per second over all workers; 0 = as fast as possible
	MetricsURL  string        // the edge's /metrics, sampled for its resident memory and CPU time ("" = skip)
	// PID, when set, is the edge's process id: its CPU time is read from
	// /proc/<pid>/stat instead of MetricsURL. Under `paystream dev` the
	// embedded broker is the same process, so the baseline run (publishes
	// to that broker) measures the broker alone.
	PID      int
	NetHTTP  bool // post through net/http's client instead of the load tool's own (see webhookPoster)
	Payload  PayloadSpec
	Progress io.Writer // live progress line; nil = quiet
}

// RunEdge posts signed events to the edge for cfg.Duration: over the load
// tool's own keep-alive HTTP/1.1 client for http:// URLs (see
// webhookPoster), else, or with cfg.NetHTTP, through net/http's client.
func RunEdge(ctx context.Context, cfg EdgeConfig, p *Payloads) (Result, error) {
	post, closeClient, err := cfg.client()
	if err != nil {
		return Result{}, err
	}
	defer closeClient()
	var rss rssSampler
	if cfg.MetricsURL != "" {
		stop := rss.start(cfg.MetricsURL)
		defer stop()
	}
	res, err := measureCPU(cfg.cpu(), func() (Result, error) {
		return drive(ctx, "edge", cfg.Concurrency, cfg.Duration, cfg.Rate, cfg.Progress, func(ctx context.Context, buf []byte) ([]byte, string, bool) {
			body, _ := p.Next(buf)
			status, err := post(ctx, body)
			if err != nil {
				if ctx.Err() != nil {
					return body, "", false
				}
				return body, "transport_error", false
			}
			return body, strconv.Itoa(status), status == http.StatusOK
		})
	})
	res.PeakRSS = rss.peak()
	return res, err
}

// client returns the function that posts one signed body and the cleanup.
func (cfg EdgeConfig) client() (func(context.Context, []byte) (int, error), func(), error) {
	if !cfg.NetHTTP {
		if w, err := newWebhookPoster(cfg.URL, cfg.Secret, cfg.Concurrency); err == nil {
			return func(_ context.Context, body []byte) (int, error) { return w.post(body, time.Now()) }, w.close, nil
		}
	}
	tr := &http.Transport{
		MaxIdleConns:        cfg.Concurrency * 2,
		MaxIdleConnsPerHost: cfg.Concurrency * 2,
		IdleConnTimeout:     30 * time.Second,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	return func(ctx context.Context, body []byte) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		req.Header.Set("Stripe-Signature", Sign(body, cfg.Secret, time.Now()))
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode, nil
	}, tr.CloseIdleConnections, nil
}

// RunBaseline publishes the same events straight to JetStream with plain
// synchronous publishes (Nats-Msg-Id and the edge's headers, one PubAck
// awaited per publish) at the same concurrency: the ceiling the edge is
// measured against.
func RunBaseline(ctx context.Context, js jetstream.JetStream, cfg EdgeConfig, p *Payloads) (Result, error) {
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = streams.DefaultEndpoint
	}
	return measureCPU(cfg.cpu(), func() (Result, error) {
		return drive(ctx, "baseline", cfg.Concurrency, cfg.Duration, cfg.Rate, cfg.Progress, func(ctx context.Context, buf []byte) ([]byte, string, bool) {
			body, ids := p.Next(buf)
			m, err := streams.Msg(stripeevent.Event{ID: ids.Event, Type: "checkout.session.completed", APIVersion: "2023-10-16",
				Endpoint: endpoint, Created: time.Now(), ReceivedAt: time.Now(), Source: "bench-baseline", Payload: body})
			if err != nil {
				return body, "error", false
			}
			if _, err := js.PublishMsg(ctx, m); err != nil {
				if ctx.Err() != nil {
					return body, "", false
				}
				return body, "publish_error", false
			}
			return body, "puback", true
		})
	})
}

// cpu is the meter of the process under test.
func (cfg EdgeConfig) cpu() cpuMeter { return cpuMeter{PID: cfg.PID, MetricsURL: cfg.MetricsURL} }

// drive runs do from conc workers for d (or until ctx ends), optionally
// paced to rps overall, and records each call's latency.
func drive(ctx context.Context, name string, conc int, d time.Duration, rps float64, w io.Writer,
	do func(ctx context.Context, buf []byte) ([]byte, string, bool)) (Result, error) {
	if conc < 1 {
		return Result{}, fmt.Errorf("loadgen: concurrency must be at least 1")
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var lim *rate.Limiter
	if rps > 0 {
		lim = rate.NewLimiter(rate.Limit(rps), max(1, int(rps/100)))
	}
	rec := newRecorder()
	stopProgress := startProgress(w, name, rec)
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 8<<10)
			for ctx.Err() == nil {
				if lim != nil && lim.Wait(ctx) != nil {
					return
				}
				t0 := time.Now()
				var status string
				var ok bool
				buf, status, ok = do(ctx, buf)
				if status == "" { // cut off by the end of the run: not a result
					return
				}
				rec.add(time.Since(t0), status, ok)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	return rec.result(name, conc, elapsed), nil
}

// rssSampler polls process_resident_memory_bytes from a /metrics URL.
type rssSampler struct {
	mu  sync.Mutex
	max uint64
}

func (s *rssSampler) start(url string) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			s.sample(url)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); s.sample(url) }
}

func (s *rssSampler) sample(url string) {
	v, err := scrape(context.Background(), url, "process_resident_memory_bytes ")
	if err == nil {
		s.mu.Lock()
		s.max = max(s.max, uint64(v))
		s.mu.Unlock()
	}
}

func (s *rssSampler) peak() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max
}
