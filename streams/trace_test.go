package streams

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

func TestTraceContextRoundTripsThroughHeaders(t *testing.T) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator()) })

	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	h := nats.Header{}
	InjectTrace(ctx, h)
	const want = "00-0102030405060708090a0b0c0d0e0f10-0102030405060708-01"
	if got := h.Get(HeaderTraceParent); got != want {
		t.Fatalf("traceparent header = %q, want %q", got, want)
	}
	got := trace.SpanContextFromContext(ExtractTrace(context.Background(), h))
	if !got.IsRemote() || got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() || !got.IsSampled() {
		t.Fatalf("extracted %+v, want %+v", got, sc)
	}
	if tp := TraceParent(ctx); tp != want {
		t.Fatalf("TraceParent = %q, want %q", tp, want)
	}
	if back := trace.SpanContextFromContext(ContextWithTraceParent(context.Background(), want)); back.SpanID() != sc.SpanID() {
		t.Fatalf("ContextWithTraceParent lost the span: %+v", back)
	}
}

func TestTraceOffLeavesHeadersAlone(t *testing.T) {
	// No propagator installed (tracing off): nothing is written or read.
	h := nats.Header{}
	InjectTrace(context.Background(), h)
	if len(h) != 0 {
		t.Fatalf("headers changed with tracing off: %v", h)
	}
	if TraceParent(context.Background()) != "" {
		t.Fatal("TraceParent without a span must be empty")
	}
	if ctx := ContextWithTraceParent(context.Background(), ""); trace.SpanContextFromContext(ctx).IsValid() {
		t.Fatal("empty traceparent gave a span context")
	}
}
