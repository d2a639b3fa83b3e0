package edge

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/internal/testenv"
)

// The service around the server (listeners, stream ensuring, readiness,
// the ordered stop) is internal/app's and tested there.

func TestNewRefusesNoEndpoint(t *testing.T) {
	if _, err := New(Config{}, testenv.StartNATS(t).JetStream(t), NewMetrics(obs.NewRegistry()), slog.Default()); err == nil ||
		!strings.Contains(err.Error(), "STRIPE_WEBHOOK_SECRET") {
		t.Errorf("New without endpoints = %v, want an error naming STRIPE_WEBHOOK_SECRET", err)
	}
}

// TestIdleConnectionsAreClosedSilently: a connection on which no byte of a
// request has arrived is closed without a word when its time runs out, as
// net/http does, on a fresh connection (after the header's time) as on a
// kept-alive one (after the idle time). HTTP clients open connections ahead
// of need; one that sends its request just as a stray answer arrives reads
// that answer as its own. A request that had started still gets its 400
// (TestSlowClients).
func TestIdleConnectionsAreClosedSilently(t *testing.T) {
	lim := defaultLimits()
	lim.header, lim.idle = 300*time.Millisecond, 500*time.Millisecond
	e := newTestEdgeLimits(t, nil, lim)
	addr := strings.TrimPrefix(e.url, "http://")

	// readUntilClosed reads c until the server closes it and returns what
	// arrived and how long that took.
	readUntilClosed := func(t *testing.T, c net.Conn) ([]byte, time.Duration) {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("connection not closed by the server: %v (read %q)", err, b)
		}
		return b, time.Since(start)
	}

	t.Run("fresh connection", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		b, waited := readUntilClosed(t, c)
		if len(b) != 0 {
			t.Fatalf("the server wrote %q on a connection that never sent a byte", b)
		}
		if waited < lim.header-100*time.Millisecond {
			t.Errorf("closed after %s, before the header's %s ran out", waited, lim.header)
		}
	})
	t.Run("kept-alive connection", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		body, sig, _ := signedEvent(t, testSecret)
		fmt.Fprintf(c, "POST /webhooks/stripe HTTP/1.1\r\nHost: edge.test\r\nStripe-Signature: %s\r\nContent-Length: %d\r\n\r\n%s", sig, len(body), body)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("first request: %d", resp.StatusCode)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		rest, err := io.ReadAll(br)
		if err != nil {
			t.Fatalf("kept-alive connection not closed by the server: %v", err)
		}
		if len(rest) != 0 {
			t.Fatalf("the server wrote %q on an idle kept-alive connection", rest)
		}
	})
	if got := testutil.ToFloat64(e.m.Rejections.WithLabelValues(unknownEndpoint, ReasonReadTimeout)); got != 0 {
		t.Errorf("rejections{unknown,read_timeout} = %v for connections that never sent a request, want 0", got)
	}
}
