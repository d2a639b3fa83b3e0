package reconcile_test

import (
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/paystream/paystream/internal/reconcile"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

// TestIndexCoversEventsBeyondTheDedupWindow: an event the edge delivered
// longer ago than the broker's dedup window is not a duplicate to the
// broker. With the stream index the run still recognises it; without, it is
// published again (and only the processor's stripe_events would drop it).
func TestIndexCoversEventsBeyondTheDedupWindow(t *testing.T) {
	tests := []struct {
		name          string
		index         bool
		wantPublished int
		wantPresent   int
		wantStored    uint64
	}{
		{name: "with index only missed are published", index: true, wantPublished: 6, wantPresent: 3, wantStored: 9},
		{name: "without index old deliveries are published again", index: false, wantPublished: 9, wantPresent: 0, wantStored: 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := mustEvents(t, 1)
			f := newFake(t, evs...)
			n := testenv.StartNATS(t)
			js, err := streams.NewJetStream(n.Connect(t))
			if err != nil {
				t.Fatal(err)
			}
			sc := streams.DefaultConfig()
			sc.DedupWindow = time.Second
			if err := streams.Ensure(t.Context(), js, sc); err != nil {
				t.Fatal(err)
			}
			pub := streams.NewPublisher(js)
			for _, e := range evs[:3] {
				if _, err := pub.Publish(t.Context(), stripeevent.Event{ID: e.id, Type: e.typ, Endpoint: "default", ReceivedAt: fixed, Payload: e.raw}); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(1500 * time.Millisecond) // the dedup window forgets them

			cfg := baseConfig()
			if tt.index {
				cfg.Index = reconcile.StreamIndex{JS: js}
			}
			sum, err := reconcile.Run(t.Context(), cfg, newLister(t, f, "", 0), pub, io.Discard, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if sum.Published != tt.wantPublished || sum.AlreadyPresent != tt.wantPresent {
				t.Errorf("summary = %+v, want published=%d already_present=%d", sum, tt.wantPublished, tt.wantPresent)
			}
			s, err := js.Stream(t.Context(), streams.EventsStream)
			if err != nil {
				t.Fatal(err)
			}
			info, err := s.Info(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if info.State.Msgs != tt.wantStored {
				t.Errorf("stream holds %d messages, want %d", info.State.Msgs, tt.wantStored)
			}
		})
	}
}

func TestStreamIndexReadsOnlySince(t *testing.T) {
	n := testenv.StartNATS(t)
	js := n.JetStream(t)
	ctx := t.Context()
	pub := streams.NewPublisher(js)
	publish := func(id string) {
		t.Helper()
		if _, err := pub.Publish(ctx, stripeevent.Event{ID: id, Type: "charge.refunded", Endpoint: "default", ReceivedAt: time.Now(), Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	idx := reconcile.StreamIndex{JS: js}
	empty, err := idx.StoredSince(ctx, time.Now().Add(-time.Hour))
	if err != nil || len(empty) != 0 {
		t.Fatalf("empty stream index = %v, %v", empty, err)
	}
	publish("evt_before")
	time.Sleep(50 * time.Millisecond)
	since := time.Now()
	time.Sleep(50 * time.Millisecond)
	for i := range 2500 { // more than one fetch batch
		publish("evt_" + string(rune('a'+i%26)) + time.Duration(i).String())
	}
	// A DLQ replay republishes under a new Nats-Msg-Id but keeps the event id.
	m := nats.NewMsg("stripe.events.default.charge.refunded")
	m.Header.Set(streams.HeaderMsgID, "replay-1-evt_replayed")
	m.Header.Set(streams.HeaderEventID, "evt_replayed")
	m.Data = []byte(`{}`)
	if _, err := streams.PublishMsg(ctx, js, m); err != nil {
		t.Fatal(err)
	}
	ids, err := idx.StoredSince(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2501 || ids.Has("evt_before") || !ids.Has("evt_replayed") || !ids.Has("evt_a0s") {
		t.Errorf("index has %d ids (before=%v replayed=%v); want the 2501 stored since", len(ids), ids.Has("evt_before"), ids.Has("evt_replayed"))
	}
	future, err := idx.StoredSince(ctx, time.Now().Add(time.Hour))
	if err != nil || len(future) != 0 {
		t.Errorf("index from the future = %d ids, %v; want none", len(future), err)
	}
}
