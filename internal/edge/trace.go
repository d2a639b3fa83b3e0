package edge

import (
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/paystream/paystream/internal/obs"
)

// startSpan starts the webhook request's span and returns the request
// carrying it; the publish below injects it into the message headers. With
// tracing off it returns r and a nil span without allocating.
func startSpan(r *http.Request) (*http.Request, trace.Span) {
	if !obs.Tracing() {
		return r, nil
	}
	ctx, span := obs.Tracer().Start(r.Context(), "webhook "+r.URL.Path, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path)))
	return r.WithContext(ctx), span
}

// endSpan records the outcome of the request on span (nil: tracing off).
func endSpan(span trace.Span, req *request, status int, err error) {
	if span == nil {
		return
	}
	span.SetAttributes(
		attribute.Int("http.response.status_code", status),
		attribute.String("paystream.endpoint", req.endpoint),
		attribute.String("paystream.request_id", req.id),
	)
	if req.event.ID != "" {
		span.SetAttributes(
			attribute.String("stripe.event_id", req.event.ID),
			attribute.String("stripe.event_type", req.event.Type),
			attribute.Bool("paystream.duplicate", req.dup),
		)
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
