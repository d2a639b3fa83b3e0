package edge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stripe/stripe-go/v76/webhook"
	"github.com/valyala/fasthttp"

	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

const (
	testSecret        = "whsec_test_default"
	testSecretOld     = "whsec_test_previous"
	testBookingSecret = "whsec_test_booking"
)

// testEdge is a real Handler behind the real public server (newServer on a
// loopback port), publishing to an embedded JetStream.
type testEdge struct {
	nats *testenv.NATS
	js   jetstream.JetStream
	h    *Handler
	m    *Metrics
	reg  *prometheus.Registry
	url  string             // http://127.0.0.1:port
	logs *testenv.LogBuffer // the server may log after answering
}

func testConfig() Config {
	return Config{
		Endpoints: map[string][]string{
			streams.DefaultEndpoint: {testSecret, testSecretOld},
			"booking":               {testBookingSecret},
		},
		Tolerance:      300 * time.Second,
		MaxBodyBytes:   64 << 10,
		RateLimit:      0,
		PublishTimeout: 5 * time.Second, // generous: CI runs every package's tests on 2 cores
	}
}

func newTestEdge(t testing.TB, mutate func(*Config)) *testEdge {
	t.Helper()
	return newTestEdgeLimits(t, mutate, defaultLimits())
}

// newTestEdgeLimits is newTestEdge with the listener's timeouts lim.
func newTestEdgeLimits(t testing.TB, mutate func(*Config), lim limits) *testEdge {
	t.Helper()
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	n := testenv.StartNATS(t)
	logs := &testenv.LogBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The production connection options: no reconnect buffer, endless reconnects.
	nc, err := streams.Connect(n.URL(), "edge-test", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := streams.NewJetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := streams.Ensure(t.Context(), js, streams.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	h, err := New(cfg, js, m, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(h, log, lim)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &testEdge{nats: n, js: js, h: h, m: m, reg: reg, url: "http://" + ln.Addr().String(), logs: logs}
}

// serveDirect runs the handler on one request without a server or a
// connection (for the fuzzer and the handler-only benchmark), from a TCP
// peer at 192.0.2.10:4242.
func serveDirect(h *Handler, method, path string, body []byte, hdr map[string]string) *fasthttp.RequestCtx {
	var r fasthttp.Request
	r.Header.SetMethod(method)
	r.SetRequestURI(path)
	r.Header.SetHost("edge.test")
	r.SetBody(body)
	for k, v := range hdr {
		if v != "" {
			r.Header.Set(k, v)
		}
	}
	c := &fasthttp.RequestCtx{}
	c.Init(&r, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 4242}, nil)
	h.Serve(c)
	return c
}

// signedEvent returns a fresh checkout.session.completed event and its header.
func signedEvent(tb testing.TB, secret string) (body []byte, header, id string) {
	tb.Helper()
	id = stripefixture.NewID("evt_", 24)
	body, err := stripefixture.CheckoutEvent("checkout.session.completed",
		stripefixture.Meta{EventID: id, APIVersion: "2024-06-20"},
		stripefixture.Checkout{AmountTotal: 2999, Metadata: map[string]string{"contentId": "c1"}})
	if err != nil {
		tb.Fatal(err)
	}
	return body, stripefixture.Sign(body, secret, time.Now()), id
}

func (e *testEdge) post(tb testing.TB, path string, body []byte, hdr map[string]string) (*http.Response, map[string]any) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+path, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return do(tb, req)
}

func do(tb testing.TB, req *http.Request) (*http.Response, map[string]any) {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, readJSON(tb, resp)
}

// readJSON reads and closes the body of resp, which must be a JSON object.
func readJSON(tb testing.TB, resp *http.Response) map[string]any {
	tb.Helper()
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		tb.Fatalf("answer %d %q is not JSON: %v", resp.StatusCode, raw, err)
	}
	return out
}

func (e *testEdge) streamMsgs(tb testing.TB) uint64 {
	tb.Helper()
	s, err := e.js.Stream(tb.Context(), streams.EventsStream)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := s.Info(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	return info.State.Msgs
}

func (e *testEdge) lastMsg(tb testing.TB, subject string) *jetstream.RawStreamMsg {
	tb.Helper()
	s, err := e.js.Stream(tb.Context(), streams.EventsStream)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(tb.Context(), subject)
	if err != nil {
		tb.Fatalf("no message on %s: %v", subject, err)
	}
	return m
}

func TestValidEventLandsOnceWithSubjectAndHeaders(t *testing.T) {
	e := newTestEdge(t, nil)
	body, sig, id := signedEvent(t, testSecret)
	for i := range 3 {
		resp, out := e.post(t, "/webhooks/stripe", body, map[string]string{"Stripe-Signature": sig, "X-Request-Id": "req-" + strconv.Itoa(i)})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("post #%d: status %d %v", i+1, resp.StatusCode, out)
		}
		if out["status"] != "accepted" || out["event_id"] != id || out["duplicate"] != (i > 0) {
			t.Errorf("post #%d: body %v", i+1, out)
		}
		for h, want := range map[string]string{
			"X-Request-Id": "req-" + strconv.Itoa(i), "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
			"Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Content-Type": "application/json",
		} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("post #%d: header %s = %q, want %q", i+1, h, got, want)
			}
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'none'") {
			t.Errorf("Content-Security-Policy = %q", csp)
		}
	}
	if n := e.streamMsgs(t); n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}
	msg := e.lastMsg(t, "stripe.events.default.checkout.session.completed")
	if !bytes.Equal(msg.Data, body) {
		t.Error("stored body differs from the raw request body")
	}
	for h, want := range map[string]string{
		streams.HeaderMsgID: id, streams.HeaderEventID: id, streams.HeaderEndpoint: "default",
		streams.HeaderEventType: "checkout.session.completed", streams.HeaderAPIVersion: "2024-06-20",
		streams.HeaderLivemode: "false", streams.HeaderRequestID: "req-0", streams.HeaderSource: "edge",
	} {
		if got := msg.Header.Get(h); got != want {
			t.Errorf("stored header %s = %q, want %q", h, got, want)
		}
	}
	if at, err := time.Parse(time.RFC3339Nano, msg.Header.Get(streams.HeaderReceivedAt)); err != nil || time.Since(at) > time.Minute {
		t.Errorf("received-at header %q: %v", msg.Header.Get(streams.HeaderReceivedAt), err)
	}
	if got := testutil.ToFloat64(e.m.Published.WithLabelValues("default", "checkout.session.completed", "false")); got != 1 {
		t.Errorf("published{duplicate=false} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(e.m.Published.WithLabelValues("default", "checkout.session.completed", "true")); got != 2 {
		t.Errorf("published{duplicate=true} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(e.m.Requests.WithLabelValues("default", "200")); got != 3 {
		t.Errorf("requests{200} = %v, want 3", got)
	}
	if got := testutil.CollectAndCount(e.m.PublishDuration); got != 1 {
		t.Errorf("publish duration series = %d, want 1", got)
	}
	if got := testutil.ToFloat64(e.m.InFlight); got != 0 {
		t.Errorf("in flight after the requests = %v", got)
	}
	if logs := e.logs.String(); !strings.Contains(logs, `"stripe_event_id":"`+id+`"`) || strings.Contains(logs, sig) || strings.Contains(logs, "whsec_") {
		t.Errorf("logs lack the event id or leak the signature/secret:\n%s", logs)
	}
}

func TestNamedEndpoints(t *testing.T) {
	e := newTestEdge(t, nil)
	body, sig, id := signedEvent(t, testBookingSecret)
	if resp, out := e.post(t, "/webhooks/stripe/booking", body, map[string]string{"Stripe-Signature": sig}); resp.StatusCode != 200 {
		t.Fatalf("booking endpoint: %d %v", resp.StatusCode, out)
	}
	msg := e.lastMsg(t, "stripe.events.booking.checkout.session.completed")
	if msg.Header.Get(streams.HeaderMsgID) != id || msg.Header.Get(streams.HeaderEndpoint) != "booking" {
		t.Errorf("headers %v", msg.Header)
	}
	// Secrets are per endpoint: the booking signature is no good on the default endpoint.
	if resp, _ := e.post(t, "/webhooks/stripe", body, map[string]string{"Stripe-Signature": sig}); resp.StatusCode != 401 {
		t.Errorf("booking-signed event on default endpoint: %d, want 401", resp.StatusCode)
	}
	// The rotated (previous) default secret still verifies.
	body2, sig2, _ := signedEvent(t, testSecretOld)
	if resp, out := e.post(t, "/webhooks/stripe", body2, map[string]string{"Stripe-Signature": sig2}); resp.StatusCode != 200 {
		t.Errorf("previous secret during rotation: %d %v", resp.StatusCode, out)
	}
	if n := e.streamMsgs(t); n != 2 {
		t.Errorf("stream holds %d messages, want 2", n)
	}
}

func TestRejectionsNeverReachTheStream(t *testing.T) {
	e := newTestEdge(t, nil)
	body, sig, _ := signedEvent(t, testSecret)
	now := time.Now()
	sign := func(b []byte, at time.Time) string { return stripefixture.Sign(b, testSecret, at) }
	notEvent := []byte(`{"id":"ch_1","object":"charge","amount":100}`)
	garbage := []byte("\x00\xffnot json at all")
	big := bytes.Repeat([]byte("x"), 64<<10+1)
	tampered := bytes.Replace(body, []byte(`"amount_total":2999`), []byte(`"amount_total":1`), 1)

	tests := []struct {
		name       string
		method     string
		path       string
		body       []byte
		sig        string
		chunked    bool
		wantStatus int
		wantReason string
		wantLabel  string
	}{
		{"missing signature", "POST", "/webhooks/stripe", body, "", false, 400, ReasonMissingSignature, "default"},
		{"malformed signature", "POST", "/webhooks/stripe", body, "v1=zz", false, 400, ReasonMalformedSignature, "default"},
		{"signed but not an event", "POST", "/webhooks/stripe", notEvent, sign(notEvent, now), false, 400, ReasonInvalidPayload, "default"},
		{"signed garbage", "POST", "/webhooks/stripe", garbage, sign(garbage, now), false, 400, ReasonInvalidPayload, "default"},
		{"wrong secret", "POST", "/webhooks/stripe", body, stripefixture.Sign(body, "whsec_wrong", now), false, 401, ReasonBadSignature, "default"},
		{"tampered body", "POST", "/webhooks/stripe", tampered, sig, false, 401, ReasonBadSignature, "default"},
		{"unsigned garbage", "POST", "/webhooks/stripe", garbage, sig, false, 401, ReasonBadSignature, "default"},
		{"v0 only", "POST", "/webhooks/stripe", body, fmt.Sprintf("t=%d,v0=%s", now.Unix(), hex.EncodeToString(webhook.ComputeSignature(now, body, testSecret))), false, 401, ReasonBadSignature, "default"},
		{"stale", "POST", "/webhooks/stripe", body, sign(body, now.Add(-10*time.Minute)), false, 401, ReasonStaleTimestamp, "default"},
		{"future", "POST", "/webhooks/stripe", body, sign(body, now.Add(10*time.Minute)), false, 401, ReasonFutureTimestamp, "default"},
		{"unknown endpoint", "POST", "/webhooks/stripe/nope", body, sig, false, 404, ReasonUnknownEndpoint, unknownEndpoint},
		{"trailing slash", "POST", "/webhooks/stripe/", body, sig, false, 404, ReasonUnknownEndpoint, unknownEndpoint},
		{"admin path on public listener", "GET", "/metrics", nil, "", false, 404, ReasonUnknownEndpoint, unknownEndpoint},
		{"GET", "GET", "/webhooks/stripe", nil, "", false, 405, ReasonMethodNotAllowed, "default"},
		{"PUT named", "PUT", "/webhooks/stripe/booking", body, sig, false, 405, ReasonMethodNotAllowed, "booking"},
		{"oversized with length", "POST", "/webhooks/stripe", big, sign(big, now), false, 413, ReasonTooLarge, "default"},
		// Found too large while read: the server has dropped the header by then.
		{"oversized chunked", "POST", "/webhooks/stripe", big, sign(big, now), true, 413, ReasonTooLarge, unknownEndpoint},
		{"oversized with length, unknown endpoint", "POST", "/webhooks/stripe/nope", big, sign(big, now), false, 404, ReasonUnknownEndpoint, unknownEndpoint},
		{"oversized with length, no signature", "POST", "/webhooks/stripe", big, "", false, 400, ReasonMissingSignature, "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rd io.Reader = bytes.NewReader(tt.body)
			if tt.chunked {
				rd = io.MultiReader(rd) // hides the length: sent chunked
			}
			req, err := http.NewRequest(tt.method, e.url+tt.path, rd)
			if err != nil {
				t.Fatal(err)
			}
			if tt.sig != "" {
				req.Header.Set("Stripe-Signature", tt.sig)
			}
			before := testutil.ToFloat64(e.m.Rejections.WithLabelValues(tt.wantLabel, tt.wantReason))
			resp, out := do(t, req)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d %v, want %d", resp.StatusCode, out, tt.wantStatus)
			}
			if out["error"] == "" || out["request_id"] != resp.Header.Get("X-Request-Id") || resp.Header.Get("X-Request-Id") == "" {
				t.Errorf("error body %v / request id header %q", out, resp.Header.Get("X-Request-Id"))
			}
			if tt.wantStatus == 405 && resp.Header.Get("Allow") != "POST" {
				t.Errorf("Allow = %q, want POST", resp.Header.Get("Allow"))
			}
			if got := testutil.ToFloat64(e.m.Rejections.WithLabelValues(tt.wantLabel, tt.wantReason)); got != before+1 {
				t.Errorf("rejections{%s,%s} = %v, want %v", tt.wantLabel, tt.wantReason, got, before+1)
			}
			if got := testutil.ToFloat64(e.m.Requests.WithLabelValues(tt.wantLabel, strconv.Itoa(tt.wantStatus))); got < 1 {
				t.Errorf("requests{%s,%d} not counted", tt.wantLabel, tt.wantStatus)
			}
			if n := e.streamMsgs(t); n != 0 {
				t.Fatalf("stream holds %d messages after a rejection", n)
			}
		})
	}
	if logs := e.logs.String(); strings.Contains(logs, sig) || strings.Contains(logs, "whsec_") || strings.Contains(logs, "not json at all") {
		t.Errorf("logs leak a signature, a secret or a body:\n%s", logs)
	}
}

func TestRateLimit(t *testing.T) {
	e := newTestEdge(t, func(c *Config) {
		c.RateLimit = 3
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	post := func(xff string) *http.Response {
		body, sig, _ := signedEvent(t, testSecret)
		hdr := map[string]string{"Stripe-Signature": sig}
		if xff != "" {
			hdr["X-Forwarded-For"] = xff
		}
		resp, _ := e.post(t, "/webhooks/stripe", body, hdr)
		return resp
	}
	for i := range 3 {
		if resp := post("198.51.100.1"); resp.StatusCode != 200 {
			t.Fatalf("request %d within the limit: %d", i+1, resp.StatusCode)
		}
	}
	resp := post("198.51.100.1")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("4th request: %d, want 429", resp.StatusCode)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After = %q, want 1..60 seconds", resp.Header.Get("Retry-After"))
	}
	// A spoofed left-most entry does not buy a fresh bucket.
	if resp := post("203.0.113.66, 198.51.100.1"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("spoofed XFF prefix: %d, want 429", resp.StatusCode)
	}
	// Another client behind the trusted proxy has its own bucket.
	if resp := post("198.51.100.2"); resp.StatusCode != 200 {
		t.Errorf("other client: %d, want 200", resp.StatusCode)
	}
	if got := testutil.ToFloat64(e.m.Rejections.WithLabelValues("default", ReasonRateLimited)); got != 2 {
		t.Errorf("rejections{rate_limited} = %v, want 2", got)
	}
	if n := e.streamMsgs(t); n != 4 {
		t.Errorf("stream holds %d messages, want the 4 accepted", n)
	}
}

func TestBrokerOutageAnswers503AndRecovers(t *testing.T) {
	e := newTestEdge(t, nil)
	body, sig, id := signedEvent(t, testSecret)
	e.nats.Shutdown()
	resp, out := e.post(t, "/webhooks/stripe", body, map[string]string{"Stripe-Signature": sig})
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("broker down: %d %v, want 503", resp.StatusCode, out)
	}
	if strings.Contains(fmt.Sprint(out["error"]), "nats") {
		t.Errorf("503 body exposes broker details: %v", out)
	}
	if got := testutil.ToFloat64(e.m.PublishErrors.WithLabelValues("default")); got != 1 {
		t.Errorf("publish errors = %v, want 1", got)
	}

	e.nats.Start() // same port and store; the edge is not restarted
	deadline := time.Now().Add(15 * time.Second)
	for {
		sig = stripefixture.Sign(body, testSecret, time.Now()) // Stripe re-signs each retry
		resp, _ = e.post(t, "/webhooks/stripe", body, map[string]string{"Stripe-Signature": sig})
		if resp.StatusCode == 200 {
			break
		}
		if resp.StatusCode != 503 || time.Now().After(deadline) {
			t.Fatalf("after broker restart: %d", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := e.streamMsgs(t); n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
	if m := e.lastMsg(t, "stripe.events.default.checkout.session.completed"); m.Header.Get(streams.HeaderMsgID) != id {
		t.Errorf("stored id %q, want %q", m.Header.Get(streams.HeaderMsgID), id)
	}
}

// TestClientHangUpStillCountsPublish: a client hanging up once its request
// is sent does not abandon a publish the broker may already hold; the
// handler still waits for the PubAck and counts the outcome.
func TestClientHangUpStillCountsPublish(t *testing.T) {
	e := newTestEdge(t, nil)
	body, sig, id := signedEvent(t, testSecret)
	c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(c, "POST /webhooks/stripe HTTP/1.1\r\nHost: edge.test\r\nStripe-Signature: %s\r\nContent-Length: %d\r\n\r\n%s", sig, len(body), body); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(e.m.Requests.WithLabelValues("default", "200")) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("requests{default,200} = %v after 10 s, want 1", testutil.ToFloat64(e.m.Requests.WithLabelValues("default", "200")))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := testutil.ToFloat64(e.m.Published.WithLabelValues("default", "checkout.session.completed", "false")); got != 1 {
		t.Errorf("published = %v, want 1", got)
	}
	if m := e.lastMsg(t, "stripe.events.default.checkout.session.completed"); m.Header.Get(streams.HeaderMsgID) != id || !bytes.Equal(m.Data, body) {
		t.Errorf("stored %q with a different body, want %q", m.Header.Get(streams.HeaderMsgID), id)
	}
}

// TestUnreadableRequestsGetTheJSONAnswer: requests the server cannot read
// (a header over the buffer, a malformed request line, a body not sent in
// time, chunked framing that lies) get the edge's own JSON 400 with a request
// id, a rejection metric and a log line, not fasthttp's plain-text default.
func TestUnreadableRequestsGetTheJSONAnswer(t *testing.T) {
	e := newTestEdge(t, nil)
	tests := []struct {
		name, raw, reason string
	}{
		{"header over the buffer", "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", maxHeaderBytes) + "\r\n\r\n", ReasonHeaderTooLarge},
		{"malformed request line", "POST\r\n\r\n", ReasonMalformedRequest},
		{"bad chunked framing", "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nStripe-Signature: t=1,v1=00\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ReasonMalformedRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := testutil.ToFloat64(e.m.Rejections.WithLabelValues(unknownEndpoint, tt.reason))
			resp, out := rawExchange(t, e.url, tt.raw)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d %v, want 400", resp.StatusCode, out)
			}
			if out["error"] == "" || out["request_id"] == "" || out["request_id"] != resp.Header.Get(HeaderRequestID) {
				t.Errorf("body %v, X-Request-Id %q", out, resp.Header.Get(HeaderRequestID))
			}
			if got := testutil.ToFloat64(e.m.Rejections.WithLabelValues(unknownEndpoint, tt.reason)); got != before+1 {
				t.Errorf("rejections{unknown,%s} = %v, want %v", tt.reason, got, before+1)
			}
			if !strings.Contains(e.logs.String(), `"reason":"`+tt.reason+`"`) {
				t.Errorf("no log line with reason %s", tt.reason)
			}
		})
	}
	if n := e.streamMsgs(t); n != 0 {
		t.Fatalf("stream holds %d messages", n)
	}
}

// rawExchange sends raw on a new connection and reads one answer, whose
// body must be JSON.
func rawExchange(tb testing.TB, url, raw string) (*http.Response, map[string]any) {
	tb.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		tb.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, readJSON(tb, resp)
}

// writeAccepted writes what writeJSON writes for the same acceptedBody, for
// ids it copies verbatim and for ids that need escaping (which validation
// never lets through, but the function must not depend on that).
func TestAcceptedAsWriteJSONWrites(t *testing.T) {
	ids := []string{"evt_1", "evt_" + strings.Repeat("Z9_", 83), "evt_1NxP0aLkdIwHu7ixZ0d2c3Yq", "", "evt_<b>", `evt_"q"`,
		`evt_\\`, "evt_ü", "evt_\x00", "evt_\u2028", "evt_&", "evt_\x7f", "evt_ ~"}
	reqs := []string{"req-1", "0b7e8c1a-3d5f-4e2a-9c1b-2f6d8e4a7b90", "a.b_c:d-e", strings.Repeat("r", 128), "<x>", "\n"}
	for _, c := range []string{`"`, `\\`, "<", ">", "&", "\x00", "\x1f", "\x7f", " ", "~", "\u00fc", "\u2029"} {
		ids, reqs = append(ids, "evt_"+c), append(reqs, "r"+c)
	}
	for _, id := range ids {
		for _, rid := range reqs {
			for _, dup := range []bool{false, true} {
				var want, got fasthttp.Response
				want.SetBodyString("left over")
				got.SetBodyString("left over")
				writeJSON(&want, http.StatusOK, acceptedBody{Status: "accepted", EventID: id, Duplicate: dup, RequestID: rid})
				writeAccepted(&got, id, dup, rid)
				if got.String() != want.String() {
					t.Errorf("writeAccepted(%q, %v, %q):\n%s\nwriteJSON:\n%s", id, dup, rid, &got, &want)
				}
				var body acceptedBody
				if err := json.Unmarshal(got.Body(), &body); err != nil || body.EventID != id || body.RequestID != rid || body.Duplicate != dup {
					t.Errorf("writeAccepted(%q, %v, %q) body %q decodes to %+v, %v", id, dup, rid, got.Body(), body, err)
				}
			}
		}
	}
}

// TestSlowClients: the header has its own, shorter time (a client trickling
// a header is refused at the header timeout, not the body's), a body its
// own from the end of the header, and a body slower than the header timeout
// but within its own is accepted.
func TestSlowClients(t *testing.T) {
	lim := defaultLimits()
	lim.header, lim.body = 300*time.Millisecond, 2*time.Second
	e := newTestEdgeLimits(t, nil, lim)
	body, sig, _ := signedEvent(t, testSecret)
	head := fmt.Sprintf("POST /webhooks/stripe HTTP/1.1\r\nHost: edge.test\r\nStripe-Signature: %s\r\nContent-Length: %d\r\n\r\n", sig, len(body))

	// exchange writes the parts with pause between them and reads the answer;
	// it returns the answer and the time from the last write to the answer.
	exchange := func(t *testing.T, pause time.Duration, parts ...string) (*http.Response, map[string]any, time.Duration) {
		t.Helper()
		c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		for i, p := range parts {
			if i > 0 {
				time.Sleep(pause)
			}
			if _, err := io.WriteString(c, p); err != nil {
				t.Fatal(err)
			}
		}
		sent := time.Now()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		waited := time.Since(sent)
		return resp, readJSON(t, resp), waited
	}

	t.Run("header never finished", func(t *testing.T) {
		resp, out, waited := exchange(t, 0, "POST /webhooks/stripe HTTP/1.1\r\nHost: edge.test\r\n")
		if resp.StatusCode != http.StatusBadRequest || out["error"] != "request not received in time" {
			t.Fatalf("status %d %v, want 400 read timeout", resp.StatusCode, out)
		}
		if waited >= lim.body {
			t.Errorf("answered after %s: the body's timeout (%s) applied to the header", waited, lim.body)
		}
	})
	t.Run("body never finished", func(t *testing.T) {
		resp, out, waited := exchange(t, 0, head+string(body[:len(body)/2]))
		if resp.StatusCode != http.StatusBadRequest || out["error"] != "request not received in time" {
			t.Fatalf("status %d %v, want 400 read timeout", resp.StatusCode, out)
		}
		if waited < lim.body-200*time.Millisecond {
			t.Errorf("answered after %s: the body got less than its %s", waited, lim.body)
		}
	})
	t.Run("body slower than the header timeout, within its own", func(t *testing.T) {
		q := len(body) / 4
		resp, out, _ := exchange(t, 200*time.Millisecond, head, string(body[:q]), string(body[q:2*q]), string(body[2*q:3*q]), string(body[3*q:]))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d %v, want 200", resp.StatusCode, out)
		}
	})
	if got := testutil.ToFloat64(e.m.Rejections.WithLabelValues(unknownEndpoint, ReasonReadTimeout)); got != 2 {
		t.Errorf("rejections{unknown,read_timeout} = %v, want 2", got)
	}
}
