package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/streams"
)

// Index tells which events STRIPE_EVENTS already holds, so a run publishes
// only the missed ones. It matters because the broker's dedup window
// (STREAM_DEDUP_WINDOW, 2h by default) is much shorter than a reconcile
// window (72h): without an index, every event older than the dedup window
// would be published again and only the processor's stripe_events table
// would drop it — safe, but a whole window of redundant processing per run,
// and a summary that calls delivered events "published".
type Index interface {
	// StoredSince returns the ids of the events stored at or after t.
	StoredSince(ctx context.Context, t time.Time) (IDSet, error)
}

// IDSet is a set of Stripe event ids.
type IDSet map[string]struct{}

// Has reports whether id is in the set.
func (s IDSet) Has(id string) bool {
	_, ok := s[id]
	return ok
}

// StreamIndex reads STRIPE_EVENTS with a headers-only ordered consumer.
type StreamIndex struct {
	JS jetstream.JetStream
}

var _ Index = StreamIndex{}

// indexBatch is how many headers one fetch asks for.
const indexBatch = 1000

// StoredSince implements Index. A message's stream timestamp is when the
// edge (or a previous run) stored it, which is never before the event was
// created, so every event created at or after t that the stream holds was
// stored at or after t. Each message counts under its Paystream-Event-Id
// header (kept when a DLQ replay changes Nats-Msg-Id), else its Nats-Msg-Id.
// A missing stream is an empty set.
func (x StreamIndex) StoredSince(ctx context.Context, t time.Time) (IDSet, error) {
	ids := IDSet{}
	s, err := x.JS.Stream(ctx, streams.EventsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return ids, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reconcile: index %s: %w", streams.EventsStream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("reconcile: index %s: %w", streams.EventsStream, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return ids, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &t, HeadersOnly: true,
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile: index %s: %w", streams.EventsStream, err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reconcile: index %s: %w", streams.EventsStream, err)
		}
		// FetchNoWait answers at once with what is stored: an empty batch
		// means the consumer has nothing left before the end of the stream.
		batch, err := cons.FetchNoWait(indexBatch)
		if err != nil {
			return nil, fmt.Errorf("reconcile: index %s: %w", streams.EventsStream, err)
		}
		n, done := 0, false
		for m := range batch.Messages() {
			n++
			id := m.Headers().Get(streams.HeaderEventID)
			if id == "" {
				id = m.Headers().Get(streams.HeaderMsgID)
			}
			if id != "" {
				ids[id] = struct{}{}
			}
			if md, err := m.Metadata(); err == nil && md.Sequence.Stream >= last {
				done = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("reconcile: index %s: %w", streams.EventsStream, err)
		}
		if n == 0 || done {
			return ids, nil
		}
	}
}
