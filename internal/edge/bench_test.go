package edge

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/valyala/fasthttp"

	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/streams"
)

// benchEvents returns n realistic checkout.session.completed bodies (about
// 2.6 KB each, distinct event ids) and their signature headers, built before
// the timer starts: signing is Stripe's cost, not the edge's.
func benchEvents(b *testing.B, n int) (bodies [][]byte, sigs []string, ids []string) {
	b.Helper()
	tmpl, err := stripefixture.CheckoutEvent("checkout.session.completed",
		stripefixture.Meta{EventID: "evt_000000000000000000000000"},
		stripefixture.Checkout{AmountTotal: 2999, Metadata: stripefixture.PurchaseMetadata(
			"user_1", "c0ffee00-0000-4000-8000-000000000001", "0e000000-0000-4000-8000-000000000001", 2999, "usd")})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	run := stripefixture.NewID("", 8) // ids unique across -count runs on one broker
	bodies, sigs, ids = make([][]byte, n), make([]string, n), make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("evt_%s%016d", run, i)
		bodies[i] = bytes.Replace(tmpl, []byte("evt_000000000000000000000000"), []byte(ids[i]), 1)
		sigs[i] = stripefixture.Sign(bodies[i], testSecret, now)
	}
	return bodies, sigs, ids
}

// BenchmarkVerify is the edge's CPU work before the publish: signature check
// of a 2.6 KB body against one secret (HMAC-SHA256) and, separately, with the
// scan of the event's top level (decodeEvent). It runs the handler's path, whose
// signing keys keep their HMAC states between requests.
func BenchmarkVerify(b *testing.B) {
	bodies, sigs, _ := benchEvents(b, 1)
	v := Verifier{Tolerance: 300 * time.Second, Now: time.Now}
	keys := []*signingKey{newSigningKey(testSecret)} // as the handler holds them
	b.Run("signature", func(b *testing.B) {
		b.SetBytes(int64(len(bodies[0])))
		b.ReportAllocs()
		for b.Loop() {
			if err := v.verify(sigs[0], bodies[0], keys); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("signature+decode", func(b *testing.B) {
		b.SetBytes(int64(len(bodies[0])))
		b.ReportAllocs()
		for b.Loop() {
			if err := v.verify(sigs[0], bodies[0], keys); err != nil {
				b.Fatal(err)
			}
			if _, err := decodeEvent(bodies[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifyPublish is the edge handler end to end minus the network:
// Serve (request id, limiter off, signature, decode, publish to an
// embedded file-storage JetStream, wait for the PubAck, JSON answer).
// Compare with BenchmarkPlainPublish, run in the same process.
func BenchmarkVerifyPublish(b *testing.B) {
	e := newTestEdge(b, nil)
	serve := func(b *testing.B, body []byte, sig string) {
		c := serveDirect(e.h, http.MethodPost, "/webhooks/stripe", body, map[string]string{"Stripe-Signature": sig})
		if c.Response.StatusCode() != http.StatusOK {
			b.Fatalf("status %d: %s", c.Response.StatusCode(), c.Response.Body())
		}
	}
	b.Run("serial", func(b *testing.B) {
		bodies, sigs, _ := benchEvents(b, b.N)
		b.SetBytes(int64(len(bodies[0])))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			serve(b, bodies[i], sigs[i])
		}
	})
	b.Run("parallel", func(b *testing.B) {
		bodies, sigs, _ := benchEvents(b, b.N)
		b.SetBytes(int64(len(bodies[0])))
		b.ReportAllocs()
		b.SetParallelism(16) // many concurrent webhooks, as during a Stripe retry burst
		var next atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := next.Add(1) - 1
				serve(b, bodies[i], sigs[i])
			}
		})
	})
}

// BenchmarkPlainPublish is the floor: a synchronous JetStream publish of the
// same bodies to the same subject with Nats-Msg-Id, nothing else.
func BenchmarkPlainPublish(b *testing.B) {
	e := newTestEdge(b, nil)
	ctx := context.Background()
	msg := func(body []byte, id string) *nats.Msg {
		m := nats.NewMsg(streams.EventsSubjectPrefix + "default.checkout.session.completed")
		m.Data = body
		m.Header.Set(streams.HeaderMsgID, id)
		return m
	}
	b.Run("serial", func(b *testing.B) {
		bodies, _, ids := benchEvents(b, b.N)
		b.SetBytes(int64(len(bodies[0])))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := e.js.PublishMsg(ctx, msg(bodies[i], ids[i])); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		bodies, _, ids := benchEvents(b, b.N)
		b.SetBytes(int64(len(bodies[0])))
		b.ReportAllocs()
		b.SetParallelism(16)
		var next atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := next.Add(1) - 1
				if _, err := e.js.PublishMsg(ctx, msg(bodies[i], ids[i])); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkLogRequest is the access log line of an accepted webhook, through
// the production JSON handler into io.Discard (the write itself is the
// logger's destination's cost, not the edge's).
func BenchmarkLogRequest(b *testing.B) {
	h := &Handler{log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	var r fasthttp.Request
	r.Header.SetMethod(http.MethodPost)
	r.SetRequestURI("/webhooks/stripe")
	c := &fasthttp.RequestCtx{}
	c.Init(&r, nil, nil)
	req := &request{id: "0d4f6a52-9b1e-4c3a-8f0e-2b7d5c1a9e33", endpoint: "default", client: netip.MustParseAddr("203.0.113.7"),
		event: stripeevent.Event{ID: "evt_1Pq2Rs3Tu4Vw5Xy6Za7Bc8De", Type: "checkout.session.completed", APIVersion: "2024-06-20"},
		seq:   123456}
	b.ReportAllocs()
	for b.Loop() {
		h.logRequest(c, req, http.StatusOK, nil, 1234567*time.Nanosecond)
	}
}

// BenchmarkServer is the edge through its real HTTP server (newServer on
// loopback, keep-alive), which BenchmarkVerifyPublish leaves out: 16
// connections, each sending raw signed requests and reading just enough of
// each answer to find its end, so the client adds little of its own. Its
// allocations are the edge's, fasthttp's and the embedded broker's.
func BenchmarkServer(b *testing.B) {
	e := newTestEdge(b, nil)
	addr := strings.TrimPrefix(e.url, "http://")
	bodies, sigs, _ := benchEvents(b, b.N)
	reqs := make([][]byte, b.N)
	for i := range reqs {
		reqs[i] = fmt.Appendf(nil, "POST /webhooks/stripe HTTP/1.1\r\nHost: edge.test\r\nUser-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\n"+
			"Content-Type: application/json; charset=utf-8\r\nStripe-Signature: %s\r\nContent-Length: %d\r\n\r\n%s", sigs[i], len(bodies[i]), bodies[i])
	}
	const conns = 16
	var next atomic.Int64
	b.SetBytes(int64(len(bodies[0])))
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if err := rawRoundTrip(c, r, reqs[i]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// rawRoundTrip writes req and reads one answer, which must be a 200.
func rawRoundTrip(c net.Conn, r *bufio.Reader, req []byte) error {
	if _, err := c.Write(req); err != nil {
		return err
	}
	status, err := r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("status line %q", status)
	}
	length := -1
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return err
			}
		}
	}
	if length < 0 {
		return errors.New("answer without Content-Length")
	}
	_, err = r.Discard(length)
	return err
}
