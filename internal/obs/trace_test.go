package obs

import (
	"context"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

func resetTracing(t *testing.T) {
	t.Cleanup(func() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
	})
}

func TestSetupTracing(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	t.Run("off without an endpoint", func(t *testing.T) {
		resetTracing(t)
		stop, err := SetupTracing(context.Background(), mapEnv(nil), "edge", log)
		if err != nil {
			t.Fatal(err)
		}
		stop()
		if Tracing() {
			t.Fatal("tracing is on without OTEL_EXPORTER_OTLP_ENDPOINT")
		}
	})
	t.Run("on with an endpoint", func(t *testing.T) {
		resetTracing(t)
		stop, err := SetupTracing(context.Background(), mapEnv(map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}), "edge", log)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		if !Tracing() {
			t.Fatal("tracing is off with OTEL_EXPORTER_OTLP_ENDPOINT set")
		}
	})
	t.Run("grpc refused by name", func(t *testing.T) {
		resetTracing(t)
		_, err := SetupTracing(context.Background(), mapEnv(map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}), "edge", log)
		if err == nil || Tracing() {
			t.Fatalf("OTEL_EXPORTER_OTLP_PROTOCOL=grpc: err %v, tracing %v", err, Tracing())
		}
	})
}

func TestObserveAddsTraceExemplar(t *testing.T) {
	resetTracing(t)
	InstallTracerProvider(sdktrace.NewTracerProvider())
	ctx, span := Tracer().Start(context.Background(), "t")
	defer span.End()
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "t_seconds", Help: "h"})
	Observe(ctx, h, 0.2)
	Observe(context.Background(), h, 0.3)
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range m.GetHistogram().GetBucket() {
		if ex := b.GetExemplar(); ex != nil {
			for _, l := range ex.GetLabel() {
				got = append(got, l.GetName()+"="+l.GetValue())
			}
		}
	}
	want := "trace_id=" + span.SpanContext().TraceID().String()
	if len(got) != 1 || got[0] != want {
		t.Fatalf("exemplars %v, want [%s]", got, want)
	}
	if m.GetHistogram().GetSampleCount() != 2 {
		t.Fatalf("count %d, want 2", m.GetHistogram().GetSampleCount())
	}
}

// mapEnv is a getenv over m (internal/config's MapEnv would be an import
// cycle from here).
func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}
