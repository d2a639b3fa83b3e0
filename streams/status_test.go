package streams_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

func TestReadStatus(t *testing.T) {
	ctx := context.Background()
	n := testenv.StartNATS(t)

	t.Run("no streams", func(t *testing.T) {
		js, err := streams.NewJetStream(n.Connect(t))
		if err != nil {
			t.Fatal(err)
		}
		st := streams.ReadStatus(ctx, js)
		if len(st.Streams) != 0 || st.Consumer != nil || len(st.Problems) != 3 ||
			!strings.HasPrefix(st.Problems[0], "stream "+streams.EventsStream+": ") {
			t.Errorf("ReadStatus on an empty broker = %+v", st)
		}
	})

	js := n.JetStream(t)
	pub := streams.NewPublisher(js)
	for _, id := range []string{"evt_a", "evt_b", "evt_c"} {
		if _, err := pub.Publish(ctx, stripeevent.Event{ID: id, Type: "checkout.session.completed", Endpoint: "default", ReceivedAt: time.Now(), Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, "stripe.dlq.default.charge.refunded", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}

	t.Run("no consumer", func(t *testing.T) {
		st := streams.ReadStatus(ctx, js)
		want := []string{"consumer " + streams.ProcessorConsumer + " does not exist (no processor has started)"}
		if st.Consumer != nil || !slices.Equal(st.Problems, want) || len(st.Streams) != 3 {
			t.Errorf("ReadStatus without consumer = %+v", st)
		}
	})

	if _, err := js.CreateOrUpdateConsumer(ctx, streams.EventsStream, jetstream.ConsumerConfig{
		Durable: streams.ProcessorConsumer, AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		t.Fatal(err)
	}
	t.Run("lag and depths", func(t *testing.T) {
		st := streams.ReadStatus(ctx, js)
		if len(st.Problems) != 0 {
			t.Errorf("problems = %v", st.Problems)
		}
		if c := st.Consumer; c == nil || c.Name != streams.ProcessorConsumer || c.Pending != 3 || c.AckPending != 0 {
			t.Errorf("consumer = %+v, want pending 3", c)
		}
		got := map[string]streams.StreamState{}
		for _, s := range st.Streams {
			got[s.Name] = s
		}
		if e := got[streams.EventsStream]; e.Messages != 3 || e.LastSeq != 3 || e.Bytes == 0 || e.Replicas != 1 || e.LastTime.IsZero() {
			t.Errorf("%s = %+v", streams.EventsStream, e)
		}
		if got[streams.DLQStream].Messages != 1 || got[streams.PurchasesStream].Messages != 0 {
			t.Errorf("streams = %+v", st.Streams)
		}
	})
}
