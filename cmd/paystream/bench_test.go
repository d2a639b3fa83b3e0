package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/app"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

// startEdge runs the real edge in-process on loopback ports against n.
func startEdge(t *testing.T, natsURL, secret string) app.Listeners {
	t.Helper()
	env := map[string]string{
		"NATS_URL": natsURL, "STRIPE_WEBHOOK_SECRET": secret, "EDGE_RATE_LIMIT": "0",
		"EDGE_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0",
	}
	cfg, err := config.ParseEdge(config.MapEnv(env), []string{"STRIPE_WEBHOOK_SECRET"})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ready := make(chan app.Addrs, 1)
	a, err := app.New([]app.Service{app.Edge(cfg)}, log, app.WithReady(func(a app.Addrs) { ready <- a }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("edge: %v", err)
		}
	})
	select {
	case a := <-ready:
		return a.Edge
	case err := <-done:
		t.Fatalf("edge exited early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("edge not ready after 10s")
	}
	return app.Listeners{}
}

// The bench command is checked for sane output, not for speed.
func TestBenchEdgeReportsEdgeBaselineAndRatio(t *testing.T) {
	const secret = "whsec_bench_test"
	n := testenv.StartNATS(t)
	addrs := startEdge(t, n.URL(), secret)
	var out, errOut bytes.Buffer
	env := config.MapEnv(map[string]string{"NATS_URL": n.URL(), "STRIPE_WEBHOOK_SECRET": secret})
	err := run(context.Background(), []string{"bench", "edge", "--json", "--duration", "700ms", "--concurrency", "4",
		"--url", "http://" + addrs.Public + "/webhooks/stripe", "--metrics-url", "http://" + addrs.Admin + "/metrics"}, env, &out, &errOut)
	if err != nil {
		t.Fatalf("bench edge: %v\n%s", err, errOut.String())
	}
	var rep benchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode %q: %v", out.String(), err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("results = %+v, want edge and baseline", rep.Results)
	}
	e, b := rep.Results[0], rep.Results[1]
	if e.Name != "edge" || e.Requests == 0 || e.Errors != 0 || e.ByStatus["200"] != e.Requests || e.P99 < e.P50 {
		t.Errorf("edge result = %+v", e)
	}
	if e.PeakRSS == 0 {
		t.Errorf("edge resident memory was not sampled")
	}
	if b.Name != "baseline" || b.Requests == 0 || b.Errors != 0 {
		t.Errorf("baseline result = %+v", b)
	}
	if rep.Ratio <= 0 {
		t.Errorf("ratio = %v", rep.Ratio)
	}
	// Every accepted edge request and every baseline publish is one message.
	s, err := n.JetStream(t).Stream(context.Background(), streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, min := info.State.Msgs, uint64(e.Requests+b.Requests); got < min || got > min+8 {
		t.Errorf("stream holds %d messages, bench counted %d", got, min)
	}
}

// A short pipeline run in CI: sane output, not a timing assertion.
func TestBenchPipelineReportsProcessorBaselineAndLatency(t *testing.T) {
	admin := testenv.ServerURL(t)
	var out, errOut bytes.Buffer
	env := config.MapEnv(map[string]string{"DATABASE_URL": admin})
	err := run(context.Background(), []string{"bench", "pipeline", "--json", "--events", "60", "--processors", "2",
		"--workers", "3", "--e2e-duration", "1s", "--e2e-capacity"}, env, &out, &errOut)
	if err != nil {
		t.Fatalf("bench pipeline: %v\n%s", err, errOut.String())
	}
	var rep benchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode %q: %v", out.String(), err)
	}
	if len(rep.Results) != 3 {
		t.Fatalf("results = %+v", rep.Results)
	}
	p, b, c := rep.Results[0], rep.Results[1], rep.Results[2]
	if p.Name != "processor" || p.Requests != 60 || p.PerSecond <= 0 || p.Concurrency != 6 {
		t.Errorf("processor result = %+v", p)
	}
	if b.Name != "sql-baseline" || b.Requests != 60 || b.Errors != 0 || b.Concurrency != 6 {
		t.Errorf("baseline result = %+v", b)
	}
	if c.Name != "copy-ceiling" || c.Requests != 60 || c.PerSecond <= 0 {
		t.Errorf("copy ceiling result = %+v", c)
	}
	for _, r := range rep.Results {
		if r.CPU == nil || r.CPU.BenchUSPerEvent <= 0 || r.CPU.PostgresNote == "" {
			t.Errorf("%s: CPU per event = %+v", r.Name, r.CPU)
		}
	}
	if rep.Ratio <= 0 {
		t.Errorf("ratio = %v", rep.Ratio)
	}
	if r, ok := rep.Extra["ratio_to_copy_ceiling"].(string); !ok || !strings.HasSuffix(r, "x") {
		t.Errorf("ratio to the copy ceiling = %v", rep.Extra["ratio_to_copy_ceiling"])
	}
	if rep.E2E == nil || rep.E2E.Events == 0 || rep.E2E.P99 < rep.E2E.P50 || rep.E2E.P50 <= 0 ||
		rep.E2E.Calls < 1 || rep.E2E.Calls > rep.E2E.Events {
		t.Errorf("e2e = %+v", rep.E2E)
	}
	if c, ok := rep.Extra["e2e_capacity_per_second"].(float64); !ok || c <= 0 {
		t.Errorf("e2e capacity = %v", rep.Extra["e2e_capacity_per_second"])
	}
}

// A short mixed run: checkouts and subscription events drained, the
// baseline and the ceiling of the same kind of rows.
func TestBenchPipelineMixedStream(t *testing.T) {
	admin := testenv.ServerURL(t)
	var out, errOut bytes.Buffer
	env := config.MapEnv(map[string]string{"DATABASE_URL": admin})
	err := run(context.Background(), []string{"bench", "pipeline", "--json", "--events", "80", "--workers", "3",
		"--skip-e2e", "--mix", "subscriptions", "--subscription-share", "0.4"}, env, &out, &errOut)
	if err != nil {
		t.Fatalf("bench pipeline --mix: %v\n%s", err, errOut.String())
	}
	var rep benchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode %q: %v", out.String(), err)
	}
	if len(rep.Results) != 3 || rep.Results[0].Requests != 80 || rep.Results[1].Requests != 80 || rep.Results[1].Errors != 0 {
		t.Fatalf("results = %+v", rep.Results)
	}
	if m, _ := rep.Extra["mix"].(string); !strings.HasPrefix(m, "subscriptions, 40 %") {
		t.Errorf("mix = %v", rep.Extra["mix"])
	}
	// 80 × 0.4 / 4 = 8 subscriptions renewed, 8 new: 16 invoices paid.
	rows, _ := rep.Extra["copy_ceiling_rows"].(map[string]any)
	if rows["subscription_invoices"] != float64(16) || rows["stripe_events"] != float64(80) || rows["purchases"] != float64(48) {
		t.Errorf("copy ceiling rows = %v", rows)
	}
	if err := run(context.Background(), []string{"bench", "pipeline", "--events", "10", "--mix", "subscriptions",
		"--subscription-share", "0.2"}, env, &out, &errOut); err == nil || !strings.Contains(err.Error(), "hold a subscription") {
		t.Errorf("2 subscription events of 10: err = %v", err)
	}
}

// A short api run in CI: both measurements, no errors, a ratio; not a
// timing assertion.
func TestBenchAPIReportsAPIAndDirectSQL(t *testing.T) {
	admin := testenv.ServerURL(t)
	var out, errOut bytes.Buffer
	env := config.MapEnv(map[string]string{"DATABASE_URL": admin})
	err := run(context.Background(), []string{"bench", "api", "--json", "--duration", "500ms", "--customers", "100",
		"--concurrency", "4"}, env, &out, &errOut)
	if err != nil {
		t.Fatalf("bench api: %v\n%s", err, errOut.String())
	}
	var rep benchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode %q: %v", out.String(), err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("results = %+v", rep.Results)
	}
	a, d := rep.Results[0], rep.Results[1]
	// Both sides answer by access type; the seed grants access through a
	// purchase, for free and through a subscription alone, and 10% none.
	for _, r := range rep.Results {
		if r.Requests == 0 || r.Errors != 0 || r.Concurrency != 4 || r.ClientCPUPerRequest <= 0 {
			t.Errorf("%s result = %+v", r.Name, r)
		}
		for _, label := range []string{"purchased", "complimentary", "subscription", "none"} {
			if r.ByStatus[label] == 0 {
				t.Errorf("%s result: no %q answer in %v", r.Name, label, r.ByStatus)
			}
		}
	}
	if a.Name != "api" || a.CPUPerRequest <= 0 || d.Name != "direct-sql" {
		t.Errorf("api result = %+v, direct result = %+v", a, d)
	}
	if rep.Ratio <= 0 {
		t.Errorf("ratio = %v", rep.Ratio)
	}
}
