package processor

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/migrations"
)

func serviceConfig(t *testing.T, natsURL, dbURL string) config.Processor {
	t.Helper()
	cfg, err := config.ParseProcessor(config.MapEnv(map[string]string{
		"NATS_URL": natsURL, "DATABASE_URL": dbURL, "ADMIN_ADDR": "127.0.0.1:0",
		"PROCESSOR_WORKERS": "2", "PROCESSOR_ACK_WAIT": "2s", "PROCESSOR_MAX_DELIVER": "3", "PROCESSOR_BACKOFF": "50ms,100ms",
		"PROCESSOR_HANDLE_TIMEOUT": "1s", "PROCESSOR_SHUTDOWN_TIMEOUT": "3s", "STREAM_STORAGE": "file",
	}))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestServiceRefusesAnOutdatedSchema(t *testing.T) {
	n := testenv.StartNATS(t)
	dsn := testenv.PostgresURL(t) // empty: no migrations applied
	built := false
	err := Service{
		Config: serviceConfig(t, n.URL(), dsn),
		Domain: func(DomainDeps) (handling.Handler, []Companion, error) {
			built = true
			return newRecorder(nil), nil, nil
		},
		Log: testLogger(t),
	}.Run(context.Background())
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
	h := newRecorder(nil)

	var mu sync.Mutex
	var order []string
	record := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	lastEntered := make(chan struct{})
	hdl := handling.HandlerFunc(func(ctx context.Context, ev handling.Event) (handling.Outcome, error) {
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
		done <- Service{
			Config: serviceConfig(t, n.URL(), dsn),
			Domain: func(d DomainDeps) (handling.Handler, []Companion, error) {
				if d.DB == nil || d.JS == nil || d.Reg == nil || d.Log == nil {
					t.Error("domain deps incomplete")
				}
				return hdl, []Companion{relay}, nil
			},
			Log:   testLogger(t),
			Ready: func(addr string) { ready <- addr },
		}.Run(ctx)
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
	eventually(t, 5*time.Second, "ready once consuming", func() bool {
		code, body := get("/readyz")
		return code == http.StatusOK && strings.Contains(body, `"ready"`)
	})
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "paystream_processor_db_connections") ||
		!strings.Contains(body, "paystream_processor_in_flight") {
		t.Errorf("GET /metrics = %d, missing processor series", code)
	}
	js := connect(t, n) // the service ensured the streams
	publish(t, js, "evt_first", "checkout.session.completed")
	eventually(t, 5*time.Second, "first event", func() bool { c, _ := h.appliedCount(); return c == 1 })
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
	if c, _ := h.appliedCount(); c != 2 {
		t.Errorf("applied %d events, want 2", c)
	}
	if !settled(t, js) {
		t.Error("events left unacked after a graceful stop")
	}
}

func TestReadinessFailsWhileNotConsuming(t *testing.T) {
	js := testenv.StartNATS(t).JetStream(t)
	p, err := New(js, newRecorder(nil), testConfig(), nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(context.Background()); err == nil {
		t.Fatal("Check passed before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	eventually(t, 5*time.Second, "consuming", func() bool { return p.Check(context.Background()) == nil })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := p.Check(context.Background()); err == nil {
		t.Error("Check passed after Run returned")
	}
}
