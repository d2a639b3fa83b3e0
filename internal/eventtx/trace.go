package eventtx

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/paystream/paystream/internal/obs"
)

// txSpanName names the span of an event transaction. Purchases are the
// only family so far; traces, docs/operations.md and the trace test of
// internal/livecheck know the span by this name.
const txSpanName = "purchase transaction"

// startTxSpan starts the span of an event transaction, a child of the
// processor's handling span in ctx; the outbox rows written inside carry it
// on to the PURCHASES message. With tracing off it returns ctx and nil.
func startTxSpan(ctx context.Context, events int) (context.Context, trace.Span) {
	if !obs.Tracing() {
		return ctx, nil
	}
	return obs.Tracer().Start(ctx, txSpanName, trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(attribute.String("db.system", "postgresql"), attribute.Int("paystream.batch_size", events)))
}

// endTxSpan ends span (nil: tracing off); an event already applied is not a
// failure of the transaction.
func endTxSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil && !errors.Is(err, errSeen) {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
