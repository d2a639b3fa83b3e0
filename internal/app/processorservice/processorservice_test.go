package processorservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/app"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/processorconfig"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/migrations"
	"github.com/paystream/paystream/streams"
)

func serviceConfig(t *testing.T, natsURL, dbURL string) processorconfig.Config {
	t.Helper()
	cfg, err := processorconfig.Parse(config.MapEnv(map[string]string{
		"NATS_URL": natsURL, "DATABASE_URL": dbURL, "ADMIN_ADDR": "127.0.0.1:0",
		"PROCESSOR_WORKERS": "2", "PROCESSOR_ACK_WAIT": "2s", "PROCESSOR_MAX_DELIVER": "3", "PROCESSOR_BACKOFF": "50ms,100ms",
		"PROCESSOR_HANDLE_TIMEOUT": "1s", "PROCESSOR_SHUTDOWN_TIMEOUT": "3s", "STREAM_STORAGE": "file",
	}))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// run runs the services through App until ctx ends.
func run(ctx context.Context, t *testing.T, services []app.Service, opts ...app.Option) error {
	t.Helper()
	a, err := app.New(services, testLogger(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return a.Run(ctx)
}

func TestServiceRefusesAnOutdatedSchema(t *testing.T) {
	n := testenv.StartNATS(t)
	dsn := testenv.PostgresURL(t) // empty: no migrations applied
	built := false
	err := run(context.Background(), t, New(serviceConfig(t, n.URL(), dsn), WithDomain(func(DomainDeps) (handling.Handler, []Companion, error) {
		built = true
		return newRecorder(), nil, nil
	})))
	if !errors.Is(err, migrations.ErrSchemaOutdated) || !strings.Contains(err.Error(), "paystream migrate up") {
		t.Fatalf("Run on an empty database = %v, want ErrSchemaOutdated telling to run `paystream migrate up`", err)
	}
	if built {
		t.Error("the domain was built although the schema is outdated")
	}
}

func TestServiceRunsReportsReadyAndStopsInOrder(t *testing.T) {
	n := testenv.StartNATS(t)
	_, dsn := testenv.DB(t)
	h := newRecorder()

	var mu sync.Mutex
	var order []string
	record := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	lastEntered := make(chan struct{})
	hdl := handling.HandlerFunc(func(ctx context.Context, ev stripeevent.Event) (handling.Outcome, error) {
		if ev.ID == "evt_last" {
			close(lastEntered)
			time.Sleep(300 * time.Millisecond) // still in flight when shutdown starts
			defer record("last event handled")
		}
		return h.Handle(ctx, ev)
	})
	relay := Companion{Name: "relay", Run: func(ctx context.Context) error {
		<-ctx.Done()
		record("relay stopped")
		return nil
	}}
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, t, New(serviceConfig(t, n.URL(), dsn), WithDomain(func(d DomainDeps) (handling.Handler, []Companion, error) {
			if d.DB == nil || d.JS == nil || d.Reg == nil || d.Log == nil {
				t.Error("domain deps incomplete")
			}
			return hdl, []Companion{relay}, nil
		})), app.WithReady(func(addrs app.Addrs) { ready <- addrs.ProcessorAdmin[0] }))
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("Run = %v before ready", err)
	case <-time.After(15 * time.Second):
		t.Fatal("service not ready after 15s")
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	testenv.Eventually(t, 5*time.Second, "ready once consuming", func() bool {
		code, body := get("/readyz")
		return code == http.StatusOK && strings.Contains(body, `"ready"`)
	})
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "paystream_processor_db_connections") ||
		!strings.Contains(body, "paystream_processor_in_flight") {
		t.Errorf("GET /metrics = %d, missing processor series", code)
	}
	// The service ensured the streams; a client's own Ensure could race it.
	js, err := streams.NewJetStream(n.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	publish(t, js, "evt_first", "checkout.session.completed")
	testenv.Eventually(t, 5*time.Second, "first event", func() bool { return h.appliedCount() == 1 })
	publish(t, js, "evt_last", "checkout.session.completed")
	select {
	case <-lastEntered:
	case <-time.After(5 * time.Second):
		t.Fatal("last event never reached the handler")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil after a graceful stop", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(order, ", ") != "last event handled, relay stopped" {
		t.Errorf("shutdown order = %v, want the in-flight event to finish before the relay stops", order)
	}
	if c := h.appliedCount(); c != 2 {
		t.Errorf("applied %d events, want 2", c)
	}
	if !settled(t, js) {
		t.Error("events left unacked after a graceful stop")
	}
}

// The helpers below are the few the processor's own tests have, for the
// processor service's tests here.

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("PAYSTREAM_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// recorder is a handler that applies every event and counts them.
type recorder struct {
	mu      sync.Mutex
	applied map[string]int
}

func newRecorder() *recorder { return &recorder{applied: map[string]int{}} }

func (r *recorder) Handle(ctx context.Context, ev stripeevent.Event) (handling.Outcome, error) {
	if ctx.Err() != nil {
		return "", ctx.Err() // a real transaction would have rolled back
	}
	r.mu.Lock()
	r.applied[ev.ID]++
	r.mu.Unlock()
	return handling.Applied, nil
}

// appliedCount returns how many distinct events were applied.
func (r *recorder) appliedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.applied)
}

// publish stores a well-formed event, as the edge would.
func publish(t *testing.T, js jetstream.JetStream, id, typ string) {
	t.Helper()
	ev := stripeevent.Event{ID: id, Type: typ, APIVersion: "2023-10-16", Endpoint: "default", Created: time.Unix(1700000000, 0),
		ReceivedAt: time.Now(), RequestID: "req_" + id,
		Payload: fmt.Appendf(nil, `{"id":%q,"object":"event","type":%q,"data":{"object":{}}}`, id, typ)}
	if _, err := streams.NewPublisher(js).Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

// settled reports whether the processor consumer has nothing pending.
func settled(t *testing.T, js jetstream.JetStream) bool {
	t.Helper()
	c, err := js.Consumer(context.Background(), streams.EventsStream, streams.ProcessorConsumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.NumPending == 0 && info.NumAckPending == 0
}
