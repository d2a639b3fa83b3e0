package processor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

// Each event of a batch gets its own processing span, continuing the trace
// its message carries, with the batch size and its own outcome; the handler
// runs inside the first event's span.
func TestBatchedEventsContinueTheirOwnTraces(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	obs.InstallTracerProvider(tp)
	t.Cleanup(func() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
	})

	js := testenv.StartNATS(t).JetStream(t)
	const n = 6
	gate := make(chan struct{})
	handlerTrace := make(chan trace.TraceID, n)
	h := newRecorder(func(ev stripeevent.Event, _ int) (handling.Outcome, error) {
		if ev.ID == "evt_t0" {
			<-gate
		}
		if ev.ID == "evt_t3" {
			return "", fault.New(fault.Invalid, "metadata_missing", "checkout without metadata")
		}
		return handling.Applied, nil
	})
	origins := map[string]trace.SpanContext{}
	for i := range n {
		id := fmt.Sprintf("evt_t%d", i)
		ctx, span := obs.Tracer().Start(context.Background(), "edge "+id)
		origins[id] = span.SpanContext()
		ev := stripeevent.Event{ID: id, Type: "checkout.session.completed", APIVersion: "2023-10-16", Endpoint: "default",
			Created: time.Unix(1700000000, 0), ReceivedAt: time.Now(),
			Payload: fmt.Appendf(nil, `{"id":%q,"object":"event","type":"checkout.session.completed","data":{"object":{}}}`, id)}
		if _, err := streams.NewPublisher(js).Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
		span.End()
	}
	cfg := testConfig()
	cfg.Workers = 1
	cfg.BatchSize = 16
	s := start(t, js, traceRecorder{h, handlerTrace}, cfg)
	testenv.Eventually(t, 10*time.Second, "consuming", func() bool { return s.p.Check(context.Background()) == nil })
	testenv.Eventually(t, 10*time.Second, "all events delivered to the instance", func() bool {
		return consumerInfo(t, js).NumAckPending == n
	})
	close(gate)
	testenv.Eventually(t, 10*time.Second, "all events settled", func() bool { return settled(t, js) && len(dlqMessages(t, js)) == 1 })

	spans := map[string]tracetest.SpanStub{}
	testenv.Eventually(t, 5*time.Second, "a processing span per event", func() bool {
		for _, sp := range exp.GetSpans() {
			for _, kv := range sp.Attributes {
				if kv.Key == "stripe.event_id" {
					spans[kv.Value.AsString()] = sp
				}
			}
		}
		return len(spans) == n
	})
	batched := 0
	for id, origin := range origins {
		sp := spans[id]
		if sp.SpanContext.TraceID() != origin.TraceID() || sp.Parent.SpanID() != origin.SpanID() {
			t.Errorf("%s: span %s in trace %s with parent %s, want trace %s parent %s", id, sp.Name,
				sp.SpanContext.TraceID(), sp.Parent.SpanID(), origin.TraceID(), origin.SpanID())
		}
		attrs := map[string]string{}
		for _, kv := range sp.Attributes {
			attrs[string(kv.Key)] = kv.Value.Emit()
		}
		want := "applied"
		if id == "evt_t3" {
			want = "dead_lettered"
		}
		if attrs["paystream.outcome"] != want {
			t.Errorf("%s: outcome %q, want %q", id, attrs["paystream.outcome"], want)
		}
		if attrs["paystream.batch_size"] != "1" {
			batched++
		}
	}
	if batched < n-1 {
		t.Errorf("%d spans record a batch, want at least %d (all but the gated first event)", batched, n-1)
	}
	close(handlerTrace)
	for id := range handlerTrace {
		found := false
		for _, o := range origins {
			found = found || o.TraceID() == id
		}
		if !found {
			t.Errorf("a batch ran in trace %s, which is none of its events'", id)
		}
	}
}

// traceRecorder is a recorder that also notes the trace each batch ran in.
type traceRecorder struct {
	*recorder
	traces chan<- trace.TraceID
}

func (r traceRecorder) HandleBatch(ctx context.Context, evs []stripeevent.Event) []handling.Result {
	r.traces <- trace.SpanContextFromContext(ctx).TraceID()
	return r.recorder.HandleBatch(ctx, evs)
}
