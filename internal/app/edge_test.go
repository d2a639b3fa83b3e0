package app

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/stripefixture"
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

// edgeService is the edge of the environment env on top of a test's:
// NATS at natsURL, one endpoint, loopback ports.
func edgeService(t *testing.T, natsURL, secret string, env map[string]string) Service {
	t.Helper()
	m := map[string]string{"NATS_URL": natsURL, config.SecretVar: secret, "EDGE_ADDR": "127.0.0.1:0",
		"ADMIN_ADDR": "127.0.0.1:0", "EDGE_RATE_LIMIT": "0", "EDGE_SHUTDOWN_TIMEOUT": "10s"}
	for k, v := range env {
		m[k] = v
	}
	cfg, err := config.ParseEdge(config.MapEnv(m), []string{config.SecretVar})
	if err != nil {
		t.Fatal(err)
	}
	return Edge(cfg)
}

// signedPost posts a fresh signed checkout event to the edge at public.
func signedPost(t *testing.T, public, secret string) (int, error) {
	body, err := stripefixture.CheckoutEvent("checkout.session.completed", stripefixture.Meta{EventID: stripefixture.NewID("evt_", 24)},
		stripefixture.Checkout{AmountTotal: 2999})
	if err != nil {
		return 0, err
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+public+"/webhooks/stripe", bytes.NewReader(body))
	req.Header.Set("Stripe-Signature", stripefixture.Sign(body, secret, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// A stop while requests wait for their PubAck: /readyz turns 503, the
// public listener stops accepting, every request in flight still gets its
// 200 once JetStream acknowledges it, and only then does Run return.
func TestEdgeStopFinishesInFlightRequests(t *testing.T) {
	const inFlight = 8
	n := testenv.StartNATS(t)
	js := n.JetStream(t)
	if err := streams.Ensure(t.Context(), js, streams.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	secret := stripefixture.NewSecret()
	slow := &slowAckJS{entered: make(chan struct{}, inFlight), gate: make(chan struct{})}
	svc := edgeService(t, n.URL(), secret, nil)
	svc.Part.(*edgePart).publisher = func(js jetstream.JetStream) jetstream.JetStream { slow.JetStream = js; return slow }
	r := start(t, svc)

	type result struct {
		status int
		err    error
	}
	results := make(chan result, inFlight)
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			code, err := signedPost(t, r.addrs.Edge.Public, secret)
			results <- result{code, err}
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
		code, body := get(t, "http://"+r.addrs.Edge.Admin+"/readyz")
		return code == 503 && strings.Contains(body, "shutting down")
	})
	waitFor(t, "the public listener to stop accepting", func() bool {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
		_, err := c.Get("http://" + r.addrs.Edge.Public + "/webhooks/stripe")
		return err != nil
	})
	select {
	case err := <-r.done:
		t.Fatalf("Run returned (%v) while requests were still waiting for PubAcks", err)
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
		t.Errorf("Run after a graceful stop = %v, want nil", err)
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

// The edge starts while the broker is down: alive, not ready, webhooks 503;
// once the broker is up it creates STRIPE_EVENTS by itself and accepts.
func TestEdgeStartsWithoutBroker(t *testing.T) {
	n := testenv.StartNATS(t)
	n.Shutdown() // the broker is down when the edge starts
	secret := stripefixture.NewSecret()
	r := start(t, edgeService(t, n.URL(), secret, nil))
	admin := "http://" + r.addrs.Edge.Admin

	if code, _ := get(t, admin+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d with the broker down, want 200 (the process is alive)", code)
	}
	if code, body := get(t, admin+"/readyz"); code != 503 || !strings.Contains(body, "nats") {
		t.Errorf("/readyz = %d %s with the broker down, want 503 naming nats", code, body)
	}
	post := func() int {
		code, err := signedPost(t, r.addrs.Edge.Public, secret)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	if code := post(); code != 503 {
		t.Errorf("webhook with the broker down = %d, want 503", code)
	}

	n.Start()
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
		t.Errorf("Run = %v after cancel, want nil", err)
	}
}

// A busy public port fails the edge with an error naming EDGE_ADDR.
func TestEdgeRefusesBusyPort(t *testing.T) {
	n := testenv.StartNATS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := New([]Service{edgeService(t, n.URL(), stripefixture.NewSecret(), map[string]string{"EDGE_ADDR": ln.Addr().String()})}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "EDGE_ADDR") {
		t.Fatalf("Run on a busy port = %v, want an error naming EDGE_ADDR", err)
	}
}

// A stop that comes before the server got to register its listener must
// still close it (fasthttp's Shutdown only closes the listeners Serve
// registered).
func TestEdgeStopRightAfterStartReleasesThePort(t *testing.T) {
	n := testenv.StartNATS(t)
	secret := stripefixture.NewSecret()
	for i := range 20 {
		r := start(t, edgeService(t, n.URL(), secret, nil))
		if err := r.stop(t); err != nil {
			t.Fatalf("round %d: Run returned %v", i, err)
		}
		ln, err := net.Listen("tcp", r.addrs.Edge.Public)
		if err != nil {
			t.Fatalf("round %d: public port still taken after stop: %v", i, err)
		}
		_ = ln.Close()
	}
}
