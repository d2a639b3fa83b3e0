package loadgen

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/processor"
	"github.com/paystream/paystream/streams"
)

func TestPipelineBenchConfigDefaults(t *testing.T) {
	c := PipelineBenchConfig{DatabaseURL: "postgres://db"}
	c.setDefaults()
	if err := c.validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if c.Events != DefaultPipelineEvents || c.Processors != 1 || c.Workers != processor.DefaultWorkers ||
		c.BatchSize != processor.DefaultBatchSize || c.E2EDuration != DefaultE2EDuration {
		t.Errorf("defaults = %+v", c)
	}
	if c.Streams != streams.DefaultConfig() || c.Env == nil || c.Log == nil {
		t.Errorf("streams %+v, env set %v, log set %v", c.Streams, c.Env != nil, c.Log != nil)
	}
	if v := c.Env("PROCESSOR_WORKERS"); v != "" {
		t.Errorf("nil Env became an environment with PROCESSOR_WORKERS=%q", v)
	}
	// Set fields are kept.
	set := PipelineBenchConfig{DatabaseURL: "postgres://db", Events: 7, Processors: 2, Workers: 3, BatchSize: 1,
		E2EDuration: time.Second, Streams: streams.Config{Replicas: 3}}
	set.setDefaults()
	if set.Events != 7 || set.Processors != 2 || set.Workers != 3 || set.BatchSize != 1 || set.E2EDuration != time.Second ||
		set.Streams.Replicas != 3 {
		t.Errorf("setDefaults overwrote set fields: %+v", set)
	}
}

func TestPipelineBenchConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*PipelineBenchConfig)
		want string // "" = valid
	}{
		{"defaults", func(*PipelineBenchConfig) {}, ""},
		{"no database", func(c *PipelineBenchConfig) { c.DatabaseURL = "" }, "DatabaseURL"},
		{"negative events", func(c *PipelineBenchConfig) { c.Events = -1 }, "at least 1"},
		{"negative workers", func(c *PipelineBenchConfig) { c.Workers = -2 }, "at least 1"},
		{"batch above max", func(c *PipelineBenchConfig) { c.BatchSize = processor.MaxBatchSize + 1 }, "batch size 65"},
		{"compared batch 0", func(c *PipelineBenchConfig) { c.CompareBatchSizes = []int{1, 0} }, "batch size 0"},
		{"compared batches", func(c *PipelineBenchConfig) { c.CompareBatchSizes = []int{1, processor.MaxBatchSize} }, ""},
		{"negative e2e rate", func(c *PipelineBenchConfig) { c.E2ERate = -1 }, "E2ERate"},
		{"mix", func(c *PipelineBenchConfig) { c.Mix = MixSubscriptions }, ""},
		{"unknown mix", func(c *PipelineBenchConfig) { c.Mix = "refunds" }, `Mix "refunds"`},
		{"share above 1", func(c *PipelineBenchConfig) { c.Mix, c.SubscriptionShare = MixSubscriptions, 1.5 }, "SubscriptionShare"},
		{"no subscription", func(c *PipelineBenchConfig) { c.Mix, c.Events = MixSubscriptions, 7 }, "hold a subscription"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := PipelineBenchConfig{DatabaseURL: "postgres://db"}
			tc.edit(&c)
			c.setDefaults()
			wantErr(t, c.validate(), tc.want)
		})
	}
}

func TestEdgeBenchConfig(t *testing.T) {
	c := EdgeBenchConfig{Secret: "whsec_x", NATSURL: "nats://x"}
	c.setDefaults()
	if err := c.validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if c.URL != DefaultEdgeURL || c.Concurrency != DefaultEdgeConcurrency || c.Duration != DefaultEdgeDuration ||
		c.MetricsURL != "" || c.Rate != 0 {
		t.Errorf("defaults = %+v", c)
	}
	for _, tc := range []struct {
		name string
		c    EdgeBenchConfig
		want string // "" = valid
	}{
		{"no secret", EdgeBenchConfig{NATSURL: "nats://x"}, "Secret"},
		{"no broker", EdgeBenchConfig{Secret: "s"}, "NATSURL"},
		{"no broker, edge only", EdgeBenchConfig{Secret: "s", SkipBaseline: true}, ""},
		{"negative concurrency", EdgeBenchConfig{Secret: "s", NATSURL: "nats://x", Concurrency: -1}, "Concurrency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.setDefaults()
			wantErr(t, tc.c.validate(), tc.want)
		})
	}
}

func TestAPIBenchConfig(t *testing.T) {
	c := APIBenchConfig{DatabaseURL: "postgres://db"}
	c.setDefaults()
	if err := c.validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if c.Concurrency != DefaultAPIConcurrency || c.Duration != DefaultAPIDuration || c.Customers != DefaultAPICustomers ||
		c.Route != APIRouteAccess || c.LedgerEntries != DefaultAPILedgerEntries || c.NetHTTP || c.KeepDB {
		t.Errorf("defaults = %+v", c)
	}
	for _, tc := range []struct {
		name string
		c    APIBenchConfig
		want string // "" = valid
	}{
		{"no database", APIBenchConfig{}, "DatabaseURL"},
		{"one customer", APIBenchConfig{DatabaseURL: "postgres://db", Customers: 1}, "Customers 1"},
		{"negative concurrency", APIBenchConfig{DatabaseURL: "postgres://db", Concurrency: -1}, "Concurrency -1"},
		{"negative duration", APIBenchConfig{DatabaseURL: "postgres://db", Duration: -time.Second}, "Duration"},
		{"unknown route", APIBenchConfig{DatabaseURL: "postgres://db", Route: "purchases"}, `Route "purchases"`},
		{"negative ledger", APIBenchConfig{DatabaseURL: "postgres://db", Route: APIRoutePayee, LedgerEntries: -1}, "LedgerEntries -1"},
		{"payee route", APIBenchConfig{DatabaseURL: "postgres://db", Route: APIRoutePayee, LedgerEntries: 100}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.setDefaults()
			wantErr(t, tc.c.validate(), tc.want)
		})
	}
}

// A bad configuration is reported before anything connects.
func TestRunBenchesValidateFirst(t *testing.T) {
	ctx := context.Background()
	_, err := RunPipelineBench(ctx, PipelineBenchConfig{DatabaseURL: "postgres://127.0.0.1:1/nowhere", BatchSize: 65}, nil)
	if err == nil || !strings.Contains(err.Error(), "batch size 65") {
		t.Errorf("RunPipelineBench = %v, want the batch size error", err)
	}
	_, err = RunEdgeBench(ctx, EdgeBenchConfig{URL: "http://127.0.0.1:1/webhooks/stripe", NATSURL: "nats://127.0.0.1:1"}, nil)
	if err == nil || !strings.Contains(err.Error(), "Secret") {
		t.Errorf("RunEdgeBench = %v, want the missing secret error", err)
	}
	_, err = RunAPIBench(ctx, APIBenchConfig{DatabaseURL: "postgres://127.0.0.1:1/nowhere", Customers: 1}, nil)
	if err == nil || !strings.Contains(err.Error(), "Customers 1") {
		t.Errorf("RunAPIBench = %v, want the customers error", err)
	}
}

// wantErr fails t unless err is nil (want "") or contains want.
func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("validate: %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("validate = %v, want an error containing %q", err, want)
	}
}
