package edge

import (
	"context"
	"net/http"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/valyala/fasthttp"

	"github.com/paystream/paystream/streams"
)

// BenchmarkTracingOff is what tracing adds to a webhook while it is off
// (OTEL_EXPORTER_OTLP_ENDPOINT unset): the span start and end, the header
// injection and the exemplar check. It must stay at a few ns and 0 allocs.
func BenchmarkTracingOff(b *testing.B) {
	c := tracedCtx()
	req := &request{id: "req", endpoint: "default"}
	h := nats.Header{}
	b.ReportAllocs()
	for b.Loop() {
		ctx, span := startSpan(c)
		streams.InjectTrace(ctx, h)
		endSpan(span, req, http.StatusOK, nil)
	}
}

func tracedCtx() *fasthttp.RequestCtx {
	var r fasthttp.Request
	r.Header.SetMethod(http.MethodPost)
	r.SetRequestURI("/webhooks/stripe")
	c := &fasthttp.RequestCtx{}
	c.Init(&r, nil, nil)
	return c
}

func TestTracingOffAddsNothing(t *testing.T) {
	c := tracedCtx()
	allocs := testing.AllocsPerRun(100, func() {
		ctx, span := startSpan(c)
		if ctx != context.Background() || span != nil {
			t.Fatal("tracing off must not start a span")
		}
		h := nats.Header{}
		streams.InjectTrace(context.Background(), h)
		endSpan(span, &request{}, http.StatusOK, nil)
	})
	if allocs > 1 { // the nats.Header map itself
		t.Fatalf("%v allocations per request with tracing off", allocs)
	}
}
