package edge

import (
	"context"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/paystream/paystream/internal/obs"
)

// startSpan starts the webhook request's span and returns the context
// carrying it; the publish below injects it into the message headers. With
// tracing off it returns context.Background() and a nil span without
// allocating.
//
// The context is not the RequestCtx: fasthttp closes its Done channel when
// the server shuts down, and a request in flight then must still wait for
// its PubAck (see Handler.publish).
func startSpan(c *fasthttp.RequestCtx) (context.Context, trace.Span) {
	if !obs.Tracing() {
		return context.Background(), nil
	}
	path := truncate(string(c.Path()), 128)
	return obs.Tracer().Start(context.Background(), "webhook "+path, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", truncate(string(c.Method()), 16)), attribute.String("url.path", path)))
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
