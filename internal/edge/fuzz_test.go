package edge

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
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
