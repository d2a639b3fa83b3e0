package livecheck

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/api/apitest"
	"github.com/paystream/paystream/internal/app"
	"github.com/paystream/paystream/internal/app/apiservice"
	"github.com/paystream/paystream/internal/app/processorservice"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/apiconfig"
	"github.com/paystream/paystream/internal/config/processorconfig"
	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/internal/pipeline/pipelinetest"
	"github.com/paystream/paystream/internal/reconcile/stripefake"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// stack is a running paystream as the test sees it from outside.
type stack struct {
	nats           *testenv.NATS
	edgeURL        string // http://host:port of the public webhook listener
	edgeAdmin      string // host:port of the edge's admin listener
	processorAdmin string // host:port of the processor's admin listener
	apiURL         string // http://host:port of the purchase API
	apiAdmin       string // host:port of the purchase API's admin listener
	apiStripe      *apitest.Stripe
	secret         string // the endpoint's signing secret
	content        uuid.UUID
	org            uuid.UUID
}

// adminTargets are the admin listeners Prometheus scrapes, by job name (the
// job names of deploy/prometheus/prometheus.yml, which the alerts use).
func (s *stack) adminTargets() map[string]string {
	return map[string]string{"edge": s.edgeAdmin, "processor": s.processorAdmin, "api": s.apiAdmin}
}

// apiKey is the purchase API's bearer key in the live check.
const apiKey = "livecheck_key_0123456789"

// startStack runs the purchase API, the edge and one processor through
// internal/app, exactly as their binaries do (the API against a fake
// Stripe), configured from an environment map, on random ports,
// against an embedded JetStream and a fresh migrated database with one piece
// of content; both are stopped at cleanup.
func startStack(t *testing.T) *stack {
	t.Helper()
	n := testenv.StartNATS(t)
	bdb, dsn := testenv.DB(t)
	s := &stack{nats: n, secret: stripefixture.NewSecret(), content: uuid.New(), org: uuid.New()}
	if _, err := bdb.NewInsert().Model(&model.Content{ID: s.content, CreatorID: "creator_live", OrganizationID: s.org,
		PriceCents: price, Currency: "usd", Visibility: "public"}).Exec(context.Background()); err != nil {
		t.Fatalf("seed content: %v", err)
	}
	env := map[string]string{
		"NATS_URL": n.URL(), "DATABASE_URL": dsn, "STRIPE_WEBHOOK_SECRET": s.secret,
		"EDGE_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0",
		"PROCESSOR_ACK_WAIT": "2s", "PROCESSOR_BACKOFF": "50ms,100ms,200ms", "PROCESSOR_MAX_DELIVER": "5",
		"DB_MAX_CONNS": "4", "OUTBOX_POLL_INTERVAL": "50ms",
		// Periodic reconcile against a fake Stripe, so its series are
		// exported (its first run is an interval away, after the test).
		"RECONCILE_INTERVAL": "1m", "STRIPE_SECRET_KEY": stripefake.Key, "STRIPE_API_BASE": stripefake.New(t, "").URL,
	}
	getenv := config.MapEnv(env)
	ecfg, err := config.ParseEdge(getenv, []string{"STRIPE_WEBHOOK_SECRET=" + s.secret})
	if err != nil {
		t.Fatal(err)
	}
	pcfg, err := processorconfig.Parse(getenv)
	if err != nil {
		t.Fatal(err)
	}
	s.apiStripe = apitest.NewStripe(t)
	apiEnv := maps.Clone(env)
	maps.Copy(apiEnv, map[string]string{"API_ADDR": "127.0.0.1:0", "API_KEYS": apiKey, "API_RATE_LIMIT": "0",
		"STRIPE_SECRET_KEY": s.apiStripe.Key, "STRIPE_API_BASE": s.apiStripe.URL(), "STRIPE_MAX_NETWORK_RETRIES": "1"})
	acfg, err := apiconfig.Parse(config.MapEnv(apiEnv))
	if err != nil {
		t.Fatal(err)
	}
	services := append([]app.Service{apiservice.New(acfg), app.Edge(ecfg)}, processorservice.New(pcfg)...)
	r := pipelinetest.Start(t, "stack", testLogger(t), services, func(err error) {
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("stack stopped with: %v", err)
		}
	}, app.WithClientName("livecheck"))
	s.edgeURL, s.edgeAdmin = "http://"+r.Addrs.Edge.Public, r.Addrs.Edge.Admin
	s.processorAdmin = r.Addrs.ProcessorAdmin[0]
	s.apiURL, s.apiAdmin = "http://"+r.Addrs.API.Public, r.Addrs.API.Admin
	for _, a := range s.adminTargets() {
		waitReady(t, "http://"+a+"/readyz")
	}
	return s
}

// waitReady polls url until it answers 200.
func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within 60s (last: %v)", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testLogger discards logs unless PAYSTREAM_TEST_LOG is set.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("PAYSTREAM_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return obs.NewLogger(tWriter{t}, slog.LevelDebug, "livecheck")
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
