package livecheck

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/streams"
)

// installInMemoryTracing turns tracing on for the whole process with an
// in-memory exporter (spans are exported as they end) and turns it off again
// at cleanup.
func installInMemoryTracing(t *testing.T) *tracetest.InMemoryExporter {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := obs.NewTracerProvider("livecheck", sdktrace.WithSyncer(exp))
	obs.InstallTracerProvider(tp)
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		otel.SetTracerProvider(noop.NewTracerProvider())
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
	})
	return exp
}

// One webhook gives one connected trace: the edge's request span, the
// processor's handling span (continued from the JetStream headers), the
// purchase transaction, the outbox relay's publish, and the PURCHASES message
// carries it on to downstream consumers. The edge's latency histogram holds
// the trace id as an exemplar.
func TestTraceFromWebhookToPurchaseEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	exp := installInMemoryTracing(t)
	s := startStack(t)
	js := s.nats.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, streams.PurchasesStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}

	c := stripefixture.Checkout{AmountTotal: price, Currency: "usd",
		Metadata: stripefixture.PurchaseMetadata("user_traced", s.content.String(), s.org.String(), price, "usd")}
	post(t, s, mustEvent(t)(stripefixture.CheckoutEvent("checkout.session.completed", stripefixture.Meta{}, c)), s.secret, http.StatusOK)

	msg, err := cons.Next(jetstream.FetchMaxWait(30 * time.Second))
	if err != nil {
		t.Fatalf("no PURCHASES message: %v", err)
	}
	if msg.Subject() != "purchases.completed" {
		t.Fatalf("PURCHASES message on %s", msg.Subject())
	}
	downstream := trace.SpanContextFromContext(streams.ExtractTrace(context.Background(), msg.Headers()))
	if !downstream.IsValid() {
		t.Fatalf("PURCHASES message carries no trace context; headers %v", msg.Headers())
	}

	// The publish span ends right after the PubAck; wait for it.
	var spans tracetest.SpanStubs
	deadline := time.Now().Add(10 * time.Second)
	for {
		spans = exp.GetSpans()
		if find(spans, "publish purchases.completed") != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	chain := []string{"webhook /webhooks/stripe", "process checkout.session.completed", "purchase transaction", "publish purchases.completed"}
	var parent *tracetest.SpanStub
	for _, name := range chain {
		sp := find(spans, name)
		if sp == nil {
			t.Fatalf("no span %q; spans: %s", name, names(spans))
		}
		if parent == nil {
			if sp.Parent.IsValid() {
				t.Errorf("edge span has a parent %s; the test sent no traceparent", sp.Parent.SpanID())
			}
		} else {
			if sp.SpanContext.TraceID() != parent.SpanContext.TraceID() {
				t.Errorf("span %q is in trace %s, want %s", name, sp.SpanContext.TraceID(), parent.SpanContext.TraceID())
			}
			if sp.Parent.SpanID() != parent.SpanContext.SpanID() {
				t.Errorf("span %q has parent %s, want %q (%s)", name, sp.Parent.SpanID(), parent.Name, parent.SpanContext.SpanID())
			}
		}
		parent = sp
	}
	if downstream.TraceID() != parent.SpanContext.TraceID() || downstream.SpanID() != parent.SpanContext.SpanID() {
		t.Errorf("PURCHASES message continues %s/%s, want the relay's publish span %s/%s",
			downstream.TraceID(), downstream.SpanID(), parent.SpanContext.TraceID(), parent.SpanContext.SpanID())
	}

	proc := find(spans, "process checkout.session.completed")
	attrs := map[string]string{}
	for _, kv := range proc.Attributes {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	for k, want := range map[string]string{"paystream.outcome": "applied", "stripe.event_type": "checkout.session.completed", "paystream.batch_size": "1"} {
		if attrs[k] != want {
			t.Errorf("processor span %s = %q, want %q (attributes %v)", k, attrs[k], want, attrs)
		}
	}
	if attrs["stripe.event_id"] == "" {
		t.Errorf("processor span has no stripe.event_id: %v", attrs)
	}

	traceID := find(spans, chain[0]).SpanContext.TraceID().String()
	if m := scrapeOpenMetrics(t, "http://"+s.edgeAdmin+"/metrics"); !strings.Contains(m, `trace_id="`+traceID+`"`) {
		t.Errorf("edge metrics hold no exemplar with trace_id %s", traceID)
	}
}

func find(spans tracetest.SpanStubs, name string) *tracetest.SpanStub {
	for i := range spans {
		if spans[i].Name == name {
			return &spans[i]
		}
	}
	return nil
}

func names(spans tracetest.SpanStubs) string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return strings.Join(out, ", ")
}

// scrapeOpenMetrics fetches url in the OpenMetrics format, the one that
// carries exemplars.
func scrapeOpenMetrics(t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
