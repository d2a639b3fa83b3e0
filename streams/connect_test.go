package streams_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

// syncBuffer is a log destination the connection's callbacks (on their own
// goroutine) and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// connectLogged connects to n with Connect's options, logging into the
// returned buffer, and returns a channel closed once the connection is.
func connectLogged(t *testing.T, n *testenv.NATS) (*nats.Conn, *syncBuffer, chan struct{}) {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	closed := make(chan struct{})
	nc, err := streams.Connect(n.URL(), "connect-test", log, nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	testenv.Eventually(t, 5*time.Second, "the connection", nc.IsConnected)
	return nc, logs, closed
}

// A connection the program drains or closes itself is a normal stop, not a
// broker outage: nothing is logged at warn level.
func TestConnectOwnStopDoesNotWarn(t *testing.T) {
	n := testenv.StartNATS(t)
	for name, stop := range map[string]func(*nats.Conn) error{
		"drain": (*nats.Conn).Drain,
		"close": func(nc *nats.Conn) error { nc.Close(); return nil },
	} {
		t.Run(name, func(t *testing.T) {
			nc, logs, closed := connectLogged(t, n)
			if err := stop(nc); err != nil {
				t.Fatal(err)
			}
			select {
			case <-closed:
			case <-time.After(5 * time.Second):
				t.Fatal("connection not closed after 5s")
			}
			// The callbacks run on the connection's own goroutine, in order:
			// the disconnect callback ran before the closed one.
			if out := logs.String(); strings.Contains(out, "level=WARN") || strings.Contains(out, "level=ERROR") {
				t.Errorf("a %s of our own connection logged a warning:\n%s", name, out)
			}
		})
	}
}

// A broker that goes away is an outage: it is logged at warn level with the
// cause.
func TestConnectBrokerLossWarns(t *testing.T) {
	n := testenv.StartNATS(t)
	_, logs, _ := connectLogged(t, n)
	n.Shutdown()
	testenv.Eventually(t, 5*time.Second, "a warning about the lost broker", func() bool {
		out := logs.String()
		return strings.Contains(out, "level=WARN") && strings.Contains(out, `msg="nats disconnected"`) &&
			!strings.Contains(out, "error=<nil>")
	})
}
