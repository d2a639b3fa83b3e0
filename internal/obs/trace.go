package obs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// TracerName is the instrumentation scope of every paystream span.
const TracerName = "github.com/paystream/paystream"

// Tracer returns paystream's tracer from OpenTelemetry's global provider.
// Before SetupTracing (or with tracing off) it is a no-op tracer.
func Tracer() trace.Tracer { return otel.GetTracerProvider().Tracer(TracerName) }

// Tracing reports whether spans are recorded: an SDK tracer provider is
// installed. Hot paths check it first, so with tracing off they pay one
// atomic load and no allocation.
func Tracing() bool {
	_, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider)
	return ok
}

// SetupTracing installs OpenTelemetry tracing for the process when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set:
// an OTLP/HTTP exporter configured by the standard OTEL_* variables (headers,
// timeout, TLS, OTEL_TRACES_SAMPLER, OTEL_SERVICE_NAME, …, which the SDK
// reads from the process environment), batched, and the W3C trace-context
// propagator. Unset, it installs nothing and tracing costs nothing. The
// returned stop flushes the spans still buffered (at most 5 s); call it
// before the process exits.
//
// OpenTelemetry keeps its provider and propagator in globals by design
// (instrumented libraries find them there); this is the one place paystream
// sets them outside tests.
func SetupTracing(ctx context.Context, getenv func(string) string, service string, log *slog.Logger) (stop func(), err error) {
	nothing := func() {}
	if strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT")) == "" && strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) == "" {
		return nothing, nil
	}
	if p := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_PROTOCOL")); p != "" && p != "http/protobuf" {
		return nothing, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s: only http/protobuf is supported", p)
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nothing, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %w", err)
	}
	tp := NewTracerProvider(service, sdktrace.WithBatcher(exp))
	InstallTracerProvider(tp)
	log.Info("tracing on: exporting spans over OTLP/HTTP")
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			log.Warn("flush traces", "error", err)
		}
	}, nil
}

// NewTracerProvider returns an SDK tracer provider for service with opts
// (an exporter, a sampler). OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES,
// when set, override and extend the resource.
func NewTracerProvider(service string, opts ...sdktrace.TracerProviderOption) *sdktrace.TracerProvider {
	res, err := resource.Merge(
		resource.NewSchemaless(semconv.ServiceName(service)),
		resource.Environment(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		res = resource.NewSchemaless(semconv.ServiceName(service))
	}
	return sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithResource(res)}, opts...)...)
}

// InstallTracerProvider makes tp the process's tracer provider and turns on
// W3C trace-context propagation (traceparent, tracestate). Tests install a
// provider with an in-memory exporter this way.
func InstallTracerProvider(tp trace.TracerProvider) {
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
}

// Observe records v on o with the trace id of ctx's sampled span as an
// exemplar, so a latency outlier on the dashboard links to its trace. Without
// a sampled span (tracing off) it is a plain Observe.
func Observe(ctx context.Context, o prometheus.Observer, v float64) {
	sc := trace.SpanContextFromContext(ctx)
	if eo, ok := o.(prometheus.ExemplarObserver); ok && sc.IsSampled() {
		eo.ObserveWithExemplar(v, prometheus.Labels{"trace_id": sc.TraceID().String()})
		return
	}
	o.Observe(v)
}
