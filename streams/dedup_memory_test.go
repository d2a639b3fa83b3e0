package streams_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

// BenchmarkDedupMemoryPerID measures what the broker's heap holds per
// remembered Nats-Msg-Id: each iteration publishes one event with a new
// evt_ id (as the edge does, through streams.Msg) to a file-storage stream
// on an embedded nats-server, and B/id is the live heap after a GC, minus the
// live heap before, per message.
//
// Two windows separate the dedup map from the stream's own storage: with
// window=2h every id is still remembered when the heap is sampled; with
// window=expired (100 ms) the broker has purged them all, so what remains is
// the file store's share. Two payloads separate the ids from the bytes: a
// checkout.session.completed as Stripe sends it (~2.5 KiB) and a 2-byte
// body. The difference of the two windows at the same payload is the cost of
// one remembered id; gcgoal-B/id is the heap the runtime lets grow before its
// next collection (GOGC=100: twice the live heap), the share of RSS a
// long-running broker keeps for it.
//
// Run it with a fixed count, so every variant holds the same number of ids:
//
//	go test -run '^$' -bench DedupMemoryPerID -benchtime 200000x ./streams/
func BenchmarkDedupMemoryPerID(b *testing.B) {
	checkout, err := stripefixture.CheckoutEvent("checkout.session.completed",
		stripefixture.Meta{EventID: "evt_" + fmt.Sprintf("%024d", 0)}, stripefixture.Checkout{})
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range []struct {
		name string
		body []byte
	}{{"checkout", checkout}, {"tiny", []byte("{}")}} {
		for _, w := range []struct {
			name   string
			window time.Duration
		}{{"window=2h", 2 * time.Hour}, {"window=expired", 100 * time.Millisecond}} {
			b.Run(p.name+"/"+w.name, func(b *testing.B) { benchDedupMemory(b, p.body, w.window) })
		}
	}
}

func benchDedupMemory(b *testing.B, body []byte, window time.Duration) {
	ctx := context.Background()
	n := testenv.StartNATS(b)
	js, err := streams.NewJetStream(n.Connect(b))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "DEDUP_BENCH", Subjects: []string{streams.EventsSubjectPrefix + ">"},
		Storage: jetstream.FileStorage, Duplicates: window, MaxAge: 7 * 24 * time.Hour,
	}); err != nil {
		b.Fatal(err)
	}
	ev := stripeevent.Event{Type: "checkout.session.completed", Endpoint: streams.DefaultEndpoint,
		APIVersion: "2023-10-16", Created: time.Now(), ReceivedAt: time.Now(), Payload: body}
	id := func(i int) string { return fmt.Sprintf("evt_%024d", i) } // a Stripe event id's length
	publish := func(from, to int) {
		b.Helper()
		for i := from; i < to; i++ {
			ev.ID = id(i)
			m, err := streams.Msg(ev)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := js.PublishMsgAsync(m); err != nil {
				b.Fatal(err)
			}
			if i%1000 == 999 || i == to-1 {
				select {
				case <-js.PublishAsyncComplete():
				case <-time.After(30 * time.Second):
					b.Fatal("no PubAcks within 30s")
				}
			}
		}
	}
	// Warm up: the stream's first block, the client's buffers, the purge timer.
	const warm = 1000
	publish(-warm, 0)
	settle(window)
	before := liveHeap()

	b.ResetTimer()
	publish(0, b.N)
	b.StopTimer()

	settle(window)
	after := liveHeap()
	ids := float64(b.N)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/ids, "B/id")
	b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/ids, "inuse-B/id")
	b.ReportMetric(float64(int64(after.NextGC)-int64(before.NextGC))/ids, "gcgoal-B/id")

	// The window decides whether the first id is still remembered.
	ev.ID = id(0)
	m, err := streams.Msg(ev)
	if err != nil {
		b.Fatal(err)
	}
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		b.Fatal(err)
	}
	if want := window >= time.Hour; ack.Duplicate != want {
		b.Fatalf("republished first id: duplicate=%v, want %v (window %s)", ack.Duplicate, want, window)
	}
}

// settle waits until what the broker holds for the messages just published
// is what it keeps: ids past a short window purged (the purge timer fires
// once the window has passed), and the file store's cached block bytes
// dropped (it keeps a block cached until it has been idle for 10 s).
func settle(window time.Duration) {
	if window < time.Second {
		time.Sleep(3 * window)
	}
	time.Sleep(11 * time.Second)
}

// liveHeap returns the memory statistics right after a full collection.
func liveHeap() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}
