package edge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/paystream/paystream/streams"
)

// BenchmarkTracingOff is what tracing adds to a webhook while it is off
// (OTEL_EXPORTER_OTLP_ENDPOINT unset): the span start and end, the header
// injection and the exemplar check. It must stay at a few ns and 0 allocs.
func BenchmarkTracingOff(b *testing.B) {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", nil)
	req := &request{id: "req", endpoint: "default"}
	h := nats.Header{}
	b.ReportAllocs()
	for b.Loop() {
		r2, span := startSpan(r)
		streams.InjectTrace(r2.Context(), h)
		endSpan(span, req, http.StatusOK, nil)
	}
}

func TestTracingOffAddsNothing(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", nil)
	allocs := testing.AllocsPerRun(100, func() {
		r2, span := startSpan(r)
		if r2 != r || span != nil {
			t.Fatal("tracing off must not wrap the request")
		}
		h := nats.Header{}
		streams.InjectTrace(context.Background(), h)
		endSpan(span, &request{}, http.StatusOK, nil)
	})
	if allocs > 1 { // the nats.Header map itself
		t.Fatalf("%v allocations per request with tracing off", allocs)
	}
}
