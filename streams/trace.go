package streams

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// HeaderTraceParent is the W3C trace-context header a message carries when
// tracing is on, so the consumer continues the producer's trace.
const HeaderTraceParent = "traceparent"

// headerCarrier adapts nats.Header to OpenTelemetry's TextMapCarrier.
type headerCarrier nats.Header

var _ propagation.TextMapCarrier = headerCarrier(nil)

func (c headerCarrier) Get(key string) string { return nats.Header(c).Get(key) }
func (c headerCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// InjectTrace writes the trace context of ctx into h (traceparent,
// tracestate). With tracing off the propagator is a no-op and h is unchanged.
func InjectTrace(ctx context.Context, h nats.Header) {
	if h == nil {
		return
	}
	otel.GetTextMapPropagator().Inject(ctx, headerCarrier(h))
}

// ExtractTrace returns ctx carrying the remote trace context found in h, if
// any, so a span started from it joins the producer's trace.
func ExtractTrace(ctx context.Context, h nats.Header) context.Context {
	if len(h) == 0 {
		return ctx
	}
	return otel.GetTextMapPropagator().Extract(ctx, headerCarrier(h))
}

// TraceParent returns the traceparent of ctx's span, or "" when there is
// none (tracing off): what a record stores to continue the trace later.
func TraceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, c)
	return c[HeaderTraceParent]
}

// ContextWithTraceParent returns ctx carrying the remote trace context of a
// stored traceparent ("" leaves ctx as it is).
func ContextWithTraceParent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier{HeaderTraceParent: traceparent})
}
