package processor

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/streams"
)

// startSpan starts the span of one event's handling as a child of the trace
// the edge put in the message headers. batch is the number of events handled
// in the same transaction. With tracing off it returns ctx and a nil span.
func startSpan(ctx context.Context, msg jetstream.Msg, md *jetstream.MsgMetadata, batch int) (context.Context, trace.Span) {
	if !obs.Tracing() {
		return ctx, nil
	}
	h := msg.Headers()
	typ := h.Get(streams.HeaderEventType)
	return obs.Tracer().Start(streams.ExtractTrace(ctx, h), "process "+typ, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("stripe.event_id", h.Get(streams.HeaderEventID)),
			attribute.String("stripe.event_type", typ),
			attribute.String("messaging.destination.name", msg.Subject()),
			attribute.Int64("messaging.nats.num_delivered", int64(md.NumDelivered)),
			attribute.Int64("messaging.nats.stream_seq", int64(md.Sequence.Stream)),
			attribute.Int("paystream.batch_size", batch),
		))
}

// endSpan records what became of the event (applied, duplicate, ignored,
// retried, dead_lettered) on span (nil: tracing off).
func endSpan(span trace.Span, dec Decision, outcome handling.Outcome, err error) {
	if span == nil {
		return
	}
	var label string
	switch dec.Verdict {
	case Ack:
		label, _ = outcomeLabel(outcome)
	case Retry:
		label = outcomeRetried
	case DeadLetter:
		label = outcomeDeadLettered
		span.SetAttributes(attribute.String("paystream.dlq_reason", dec.Reason))
	}
	span.SetAttributes(attribute.String("paystream.outcome", label))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
