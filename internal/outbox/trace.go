package outbox

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

// startPublishSpan starts the relay's publish span for row in the trace of
// the transaction that wrote it; the span's context goes into the message
// headers, so a downstream consumer continues the same trace. Rows written
// with tracing off (no traceparent) and tracing off here give a nil span.
func startPublishSpan(ctx context.Context, row model.Outbox) (context.Context, trace.Span) {
	if row.TraceParent == "" || !obs.Tracing() {
		return ctx, nil
	}
	return obs.Tracer().Start(streams.ContextWithTraceParent(ctx, row.TraceParent), "publish "+row.Subject,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.destination.name", row.Subject),
			attribute.String("messaging.message.id", row.ID.String()),
			attribute.String("paystream.event_type", row.EventType),
			attribute.Int("paystream.outbox_attempts", row.Attempts),
		))
}

// endPublishSpan ends span (nil: no trace).
func endPublishSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
