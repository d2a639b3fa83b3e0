package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamState is the size and last message of one stream, as operators see
// it (`paystream status`).
type StreamState struct {
	Name     string    `json:"name"`
	Messages uint64    `json:"messages"`
	Bytes    uint64    `json:"bytes"`
	LastSeq  uint64    `json:"last_seq"`
	LastTime time.Time `json:"last_time"`
	Replicas int       `json:"replicas"`
}

// ConsumerState is the lag of the processor consumer group.
type ConsumerState struct {
	Name        string `json:"name"`
	Pending     uint64 `json:"pending"`
	AckPending  int    `json:"ack_pending"`
	Redelivered int    `json:"redelivered"`
	Waiting     int    `json:"waiting_pulls"`
	AckFloor    uint64 `json:"ack_floor_stream_seq"`
}

// Status is what the broker says about paystream's streams and the
// processor consumer. Problems lists, in words, what could not be read; the
// rest is filled as far as it could be.
type Status struct {
	Streams  []StreamState
	Consumer *ConsumerState
	Problems []string
}

// ReadStatus reads the state of STRIPE_EVENTS, STRIPE_DLQ and PURCHASES and
// of the processor consumer. A missing stream or consumer is a problem, not
// an error: an operator wants to see everything else too.
func ReadStatus(ctx context.Context, js jetstream.JetStream) Status {
	var st Status
	for _, name := range []string{EventsStream, DLQStream, PurchasesStream} {
		s, err := js.Stream(ctx, name)
		var info *jetstream.StreamInfo
		if err == nil {
			info, err = s.Info(ctx)
		}
		if err != nil {
			st.Problems = append(st.Problems, fmt.Sprintf("stream %s: %v", name, err))
			continue
		}
		st.Streams = append(st.Streams, StreamState{Name: name, Messages: info.State.Msgs, Bytes: info.State.Bytes,
			LastSeq: info.State.LastSeq, LastTime: info.State.LastTime, Replicas: info.Config.Replicas})
		if name == EventsStream {
			if st.Consumer, err = readConsumer(ctx, s); err != nil {
				st.Problems = append(st.Problems, err.Error())
			}
		}
	}
	return st
}

// readConsumer reads the processor consumer of STRIPE_EVENTS (s).
func readConsumer(ctx context.Context, s jetstream.Stream) (*ConsumerState, error) {
	c, err := s.Consumer(ctx, ProcessorConsumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, errors.New("consumer " + ProcessorConsumer + " does not exist (no processor has started)")
	}
	var ci *jetstream.ConsumerInfo
	if err == nil {
		ci, err = c.Info(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", ProcessorConsumer, err)
	}
	return &ConsumerState{Name: ci.Name, Pending: ci.NumPending, AckPending: ci.NumAckPending,
		Redelivered: ci.NumRedelivered, Waiting: ci.NumWaiting, AckFloor: ci.AckFloor.Stream}, nil
}
