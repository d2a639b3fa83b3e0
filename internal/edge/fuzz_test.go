package edge

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/paystream/paystream/internal/stripefixture"
)

// FuzzHandler drives the real handler, publishing to an embedded JetStream,
// with arbitrary methods, paths, headers and bodies. When sign is true the
// harness signs the (mutated) body with the endpoint's real secret, so the
// fuzzer also explores everything behind the signature check.
//
// Invariants: no panic; no 5xx (the broker is up); a 200 only for a body that
// carries a valid v1 signature of one of the endpoint's secrets; a non-200
// never adds a message to the stream; a request adds at most one.
func FuzzHandler(f *testing.F) {
	e := newTestEdge(f, func(c *Config) {
		c.MaxBodyBytes = 8 << 10
		c.RateLimit = 1_000_000 // on, so client-IP parsing is fuzzed too, but never hit
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	})
	realistic, _, _ := signedEvent(f, testSecret)
	minimal := []byte(`{"id":"evt_1","object":"event","type":"charge.refunded","api_version":"2099-01-01","livemode":false,"created":1}`)
	now := time.Now()
	f.Add("POST", "/webhooks/stripe", "", "", "", realistic, true)
	f.Add("POST", "/webhooks/stripe/booking", "", "", "r-1", minimal, true)
	f.Add("POST", "/webhooks/stripe", stripefixture.Sign(minimal, testSecret, now), "198.51.100.1", "", minimal, false)
	f.Add("POST", "/webhooks/stripe", "t=1,v1=00", "", "", minimal, false)
	f.Add("POST", "/webhooks/stripe", "", "", "", []byte(`{"id":"evt_1","object":"event","type":"a.*"}`), true)
	f.Add("POST", "/webhooks/stripe", "", "", "", []byte(`{"id":"evt_1","object":"event","type":"a.b","livemode":"x"}`), true)
	f.Add("POST", "/webhooks/stripe", "", "", "", []byte(`[]`), true)
	f.Add("GET", "/webhooks/stripe/../stripe", "v0=1", "10.0.0.1, 192.0.2.9", "\r\n", []byte{}, false)
	f.Add("POST", "/webhooks/stripe/unknown", "", "", "", minimal, true)
	f.Add("POST", "/webhooks/stripe", fmt.Sprintf("t=%d,v1=%s,v1=zz,x=y", now.Unix(), "ab"), "", "", minimal, false)

	secrets := map[string][]string{
		"/webhooks/stripe":         {testSecret, testSecretOld},
		"/webhooks/stripe/booking": {testBookingSecret},
	}
	f.Fuzz(func(t *testing.T, method, path, sig, xff, reqID string, body []byte, sign bool) {
		if sign {
			s := testSecret
			if path == "/webhooks/stripe/booking" {
				s = testBookingSecret
			}
			sig = stripefixture.Sign(body, s, time.Now())
		}
		before := e.streamMsgs(t)
		c := serveDirect(e.h, method, path, body, map[string]string{"Stripe-Signature": sig, "X-Forwarded-For": xff, "X-Request-Id": reqID})
		after := e.streamMsgs(t)
		code := c.Response.StatusCode()

		if code >= 500 {
			t.Fatalf("status %d with the broker up: %s", code, c.Response.Body())
		}
		if after > before+1 {
			t.Fatalf("one request added %d messages", after-before)
		}
		if code != http.StatusOK {
			if after != before {
				t.Fatalf("status %d but the stream grew", code)
			}
			return
		}
		verified := false
		for _, s := range secrets[path] {
			if webhook.ValidatePayloadIgnoringTolerance(body, sig, s) == nil {
				verified = true
			}
		}
		if !verified || method != http.MethodPost || len(body) > 8<<10 {
			t.Fatalf("200 for an unverified or disallowed request (method %q path %q)", method, path)
		}
		if id := string(c.Response.Header.Peek(HeaderRequestID)); id == "" || strings.ContainsAny(id, "\r\n ") {
			t.Fatalf("bad request id echoed: %q", id)
		}
	})
}

// FuzzServerRawRequest writes arbitrary bytes to the real public server
// (newServer over loopback) as one request and reads the first answer.
// Where FuzzHandler starts from a parsed request, this reaches fasthttp's
// parser and the ServeError path.
//
// Invariants: the server answers with HTTP/1.1 or closes the connection; an
// answer is never a 5xx (the broker is up); every answer other than a 200
// carries the edge's JSON error body with the X-Request-Id it echoes, never
// fasthttp's plain-text default; a 200 only comes with a stored message.
func FuzzServerRawRequest(f *testing.F) {
	e := newTestEdge(f, func(c *Config) { c.MaxBodyBytes = 8 << 10 })
	body, sig, _ := signedEvent(f, testSecret)
	f.Add([]byte(fmt.Sprintf("POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nStripe-Signature: %s\r\nContent-Length: %d\r\n\r\n%s", sig, len(body), body)))
	f.Add([]byte("POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nStripe-Signature: t=1,v1=00\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\nStripe-Signature: t=1,v1=00\r\n\r\n"))
	f.Add([]byte("GET /webhooks/stripe/../../metrics HTTP/1.0\r\n\r\n"))
	f.Add([]byte("POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}"))
	f.Add([]byte("\x00\xff garbage\r\n\r\n"))
	f.Add([]byte("POST http://evil.example/webhooks/stripe HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\r\nX-Request-Id: b\r\nContent-Length: 0\r\n\r\n"))
	addr := strings.TrimPrefix(e.url, "http://")
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 64<<10 {
			return
		}
		before := e.streamMsgs(t)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write(raw)
		_ = c.(*net.TCPConn).CloseWrite() // an incomplete request ends here rather than at the read timeout
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		for err == nil && resp.StatusCode == http.StatusContinue {
			resp, err = http.ReadResponse(br, nil)
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
				return // closed without an answer: fasthttp's answer to an empty or cut request
			}
			t.Fatalf("unreadable answer: %v", err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("answer body: %v", err)
		}
		after := e.streamMsgs(t)
		if resp.StatusCode >= 500 {
			t.Fatalf("status %d with the broker up: %s", resp.StatusCode, b)
		}
		if resp.StatusCode == http.StatusOK {
			if after == before && !bytes.Contains(b, []byte(`"duplicate":true`)) {
				t.Fatalf("200 but nothing stored: %s", b)
			}
			return
		}
		if after != before {
			t.Fatalf("status %d but the stream grew", resp.StatusCode)
		}
		var out errorBody
		if err := json.Unmarshal(b, &out); err != nil || out.Error == "" || out.RequestID == "" || out.RequestID != resp.Header.Get(HeaderRequestID) {
			t.Fatalf("status %d answer %q (X-Request-Id %q) is not the edge's JSON error: %v", resp.StatusCode, b, resp.Header.Get(HeaderRequestID), err)
		}
	})
}
