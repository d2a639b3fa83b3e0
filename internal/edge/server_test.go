package edge

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

// slowAckJS holds every PubAck until the test opens the gate, so requests
// can be caught in flight.
type slowAckJS struct {
	jetstream.JetStream
	entered chan struct{}
	gate    chan struct{}
}

func (s *slowAckJS) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	fut, err := s.JetStream.PublishMsgAsync(m, opts...)
	s.entered <- struct{}{}
	<-s.gate
	return fut, err
}

type running struct {
	addrs  Addrs
	cancel context.CancelFunc
	done   chan error
}

// startServe runs serve on :0 ports until the test cancels it.
func startServe(t *testing.T, nc *nats.Conn, js jetstream.JetStream) *running {
	t.Helper()
	cfg := testConfig()
	cfg.Addr, cfg.AdminAddr, cfg.ShutdownTimeout = "127.0.0.1:0", "127.0.0.1:0", 10*time.Second
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Addrs, 1)
	r := &running{cancel: cancel, done: make(chan error, 1)}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	go func() { r.done <- serve(ctx, cfg, nc, js, obs.NewRegistry(), log, func(a Addrs) { ready <- a }) }()
	select {
	case r.addrs = <-ready:
	case err := <-r.done:
		t.Fatalf("serve returned before ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve not ready after 10s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			t.Error("serve did not return after cancel")
		}
	})
	return r
}

func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not return within 15s of cancel")
		return nil
	}
}

func connect(t *testing.T, n *testenv.NATS) *nats.Conn {
	t.Helper()
	nc, err := streams.Connect(n.URL(), "edge-test", slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestShutdownFinishesInFlightRequests(t *testing.T) {
	const inFlight = 8
	n := testenv.StartNATS(t)
	nc := connect(t, n)
	js, err := streams.NewJetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := streams.Ensure(t.Context(), js, streams.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	slow := &slowAckJS{JetStream: js, entered: make(chan struct{}, inFlight), gate: make(chan struct{})}
	r := startServe(t, nc, slow)

	type result struct {
		status int
		err    error
	}
	results := make(chan result, inFlight)
	var wg sync.WaitGroup
	for range inFlight {
		body, sig, _ := signedEvent(t, testSecret)
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, "http://"+r.addrs.Public+"/webhooks/stripe", bytes.NewReader(body))
			req.Header.Set("Stripe-Signature", sig)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results <- result{err: err}
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			results <- result{status: resp.StatusCode}
		})
	}
	for i := range inFlight {
		select {
		case <-slow.entered:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d requests reached the publish", i, inFlight)
		}
	}

	r.cancel() // SIGTERM while every request waits for its PubAck
	waitFor(t, "readyz to report shutting down", func() bool {
		code, body := get(t, "http://"+r.addrs.Admin+"/readyz")
		return code == 503 && strings.Contains(body, "shutting down")
	})
	waitFor(t, "the public listener to stop accepting", func() bool {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
		_, err := c.Get("http://" + r.addrs.Public + "/webhooks/stripe")
		return err != nil
	})
	select {
	case err := <-r.done:
		t.Fatalf("serve returned (%v) while requests were still waiting for PubAcks", err)
	default:
	}
	close(slow.gate)
	wg.Wait()
	close(results)
	for res := range results {
		if res.err != nil || res.status != 200 {
			t.Errorf("in-flight request: status %d, err %v; want 200", res.status, res.err)
		}
	}
	if err := r.stop(t); err != nil {
		t.Errorf("serve after graceful shutdown = %v, want nil", err)
	}
	s, err := js.Stream(t.Context(), streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != inFlight {
		t.Errorf("stream holds %d messages, want all %d in-flight events", info.State.Msgs, inFlight)
	}
}

func TestAdminEndpointsAndStartWithoutBroker(t *testing.T) {
	n := testenv.StartNATS(t)
	n.Shutdown() // the broker is down when the edge starts
	nc := connect(t, n)
	js, err := streams.NewJetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	r := startServe(t, nc, js)
	admin := "http://" + r.addrs.Admin

	if code, _ := get(t, admin+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d with the broker down, want 200 (the process is alive)", code)
	}
	if code, body := get(t, admin+"/readyz"); code != 503 || !strings.Contains(body, "nats") {
		t.Errorf("/readyz = %d %s with the broker down, want 503 naming nats", code, body)
	}
	body, sig, _ := signedEvent(t, testSecret)
	post := func() int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+r.addrs.Public+"/webhooks/stripe", bytes.NewReader(body))
		req.Header.Set("Stripe-Signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(); code != 503 {
		t.Errorf("webhook with the broker down = %d, want 503", code)
	}

	n.Start()
	// The edge connects and creates STRIPE_EVENTS by itself.
	waitFor(t, "/readyz to turn 200", func() bool { code, _ := get(t, admin+"/readyz"); return code == 200 })
	if code := post(); code != 200 {
		t.Errorf("webhook after the broker came up = %d, want 200", code)
	}
	code, metrics := get(t, admin+"/metrics")
	for _, want := range []string{
		`paystream_edge_requests_total{code="200",endpoint="default"} 1`,
		`paystream_edge_requests_total{code="503",endpoint="default"} 1`,
		`paystream_edge_publish_errors_total{endpoint="default"} 1`,
		`paystream_edge_in_flight_requests 0`,
		"go_goroutines",
	} {
		if code != 200 || !strings.Contains(metrics, want) {
			t.Errorf("/metrics (%d) lacks %q", code, want)
		}
	}
	if err := r.stop(t); err != nil {
		t.Errorf("serve = %v after cancel, want nil", err)
	}
}

func TestRunRefusesBusyPort(t *testing.T) {
	n := testenv.StartNATS(t)
	nc := connect(t, n)
	r := startServe(t, nc, n.JetStream(t))
	cfg := testConfig()
	cfg.Addr, cfg.AdminAddr = r.addrs.Public, "127.0.0.1:0"
	err := Run(t.Context(), cfg, nc, obs.NewRegistry(), slog.New(slog.NewJSONHandler(io.Discard, nil)), nil)
	if err == nil || !strings.Contains(err.Error(), "EDGE_ADDR") {
		t.Fatalf("Run on a busy port = %v, want an error naming EDGE_ADDR", err)
	}
	if _, err := New(Config{}, n.JetStream(t), NewMetrics(obs.NewRegistry()), slog.Default()); err == nil {
		t.Error("New without endpoints succeeded")
	}
}

// TestStopRightAfterStartReleasesThePort: a stop that comes before the
// server got to register its listener must still close it (fasthttp's
// Shutdown only closes the listeners Serve registered).
func TestStopRightAfterStartReleasesThePort(t *testing.T) {
	n := testenv.StartNATS(t)
	nc := connect(t, n)
	js, err := streams.NewJetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		r := startServe(t, nc, js)
		if err := r.stop(t); err != nil {
			t.Fatalf("round %d: serve returned %v", i, err)
		}
		ln, err := net.Listen("tcp", r.addrs.Public)
		if err != nil {
			t.Fatalf("round %d: public port still taken after stop: %v", i, err)
		}
		_ = ln.Close()
	}
}
