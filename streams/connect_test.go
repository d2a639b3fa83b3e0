package streams_test

import (
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

// logFile is a log destination the connection's callbacks (on their own
// goroutine) and the test share: a file, whose writes are safe from any
// goroutine.
type logFile struct{ *os.File }

func (f logFile) String() string {
	b, err := os.ReadFile(f.Name())
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// connectLogged connects to n with Connect's options, logging into the
// returned file, and returns a channel closed once the connection is.
func connectLogged(t *testing.T, n *testenv.NATS) (*nats.Conn, logFile, chan struct{}) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	logs := logFile{f}
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
