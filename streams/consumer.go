package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ProcessorConsumer is the durable pull consumer on STRIPE_EVENTS that every
// processor instance shares: JetStream hands each message to one instance at a
// time, which makes the instances a consumer group.
const ProcessorConsumer = "processor"

// ConsumerConfig shapes the durable consumer ProcessorConsumer.
type ConsumerConfig struct {
	AckWait       time.Duration   // PROCESSOR_ACK_WAIT
	MaxAckPending int             // PROCESSOR_MAX_ACK_PENDING, across all instances
	MaxDeliver    int             // PROCESSOR_MAX_DELIVER, including the first delivery
	Backoff       []time.Duration // PROCESSOR_BACKOFF, NakWithDelay schedule
}

// DefaultConsumerConfig returns the production defaults.
//
//   - AckWait 30s: longer than any healthy handler (one Postgres transaction,
//     bounded by PROCESSOR_HANDLE_TIMEOUT, default 20s), so a slow but alive
//     instance is not raced by a redelivery; short enough that the events of a
//     crashed instance move to another one within half a minute. Handlers that
//     run long send InProgress, which restarts the clock.
//   - MaxAckPending 256: bounds the events in flight over the whole group
//     (each instance prefetches about twice its worker count), so a stuck
//     group stops pulling instead of hoarding the backlog, while leaving room
//     for a dozen instances of ten workers.
//   - MaxDeliver 10: with the backoff below, a transient failure is retried for
//     about half an hour (a database failover, a deploy, an out-of-order event
//     whose prerequisite arrives late) before the event is dead-lettered.
//   - Backoff 1s,5s,15s,30s,1m,2m,5m,10m,15m: the delay before delivery n+1
//     after a failed delivery n. It starts short because most transient errors
//     (serialization failures, lock timeouts, an event racing its predecessor)
//     clear within seconds, and grows so an outage is not hammered.
//
// The schedule is applied by the processor with NakWithDelay, computed from
// the delivery count (NakDelay). It is deliberately NOT set as the consumer's
// JetStream BackOff: nats-server replaces AckWait by BackOff[0] when BackOff is
// set (a 1s ack deadline would redeliver every handler that runs longer than a
// second to a second instance), and it adds BackOff[n]-AckWait to every
// NakWithDelay of a later delivery, so the two schedules would compound.
// Redeliveries after an AckWait expiry (a crashed or partitioned instance)
// therefore come every AckWait; MaxDeliver bounds them too, and the processor's
// MAX_DELIVERIES advisory listener copies such an event to STRIPE_DLQ.
func DefaultConsumerConfig() ConsumerConfig {
	return ConsumerConfig{
		AckWait:       30 * time.Second,
		MaxAckPending: 256,
		MaxDeliver:    10,
		Backoff: []time.Duration{
			time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second,
			time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute,
		},
	}
}

// MaxBackoffDelays is how many backoff delays a consumer with maxDeliver
// deliveries uses: delivery maxDeliver is dead-lettered, not retried, so
// only maxDeliver-1 delays are ever used and a longer list is a mistake.
func MaxBackoffDelays(maxDeliver int) int { return maxDeliver - 1 }

// Validate reports the first setting JetStream or the processor would not
// accept, naming its environment variable.
func (c ConsumerConfig) Validate() error {
	switch {
	case c.AckWait < 100*time.Millisecond:
		return fmt.Errorf("consumer: PROCESSOR_ACK_WAIT %s must be at least 100ms", c.AckWait)
	case c.MaxAckPending < 1:
		return fmt.Errorf("consumer: PROCESSOR_MAX_ACK_PENDING %d must be at least 1", c.MaxAckPending)
	case c.MaxDeliver < 2:
		// One delivery leaves no retry; unlimited (-1) would never dead-letter.
		return fmt.Errorf("consumer: PROCESSOR_MAX_DELIVER %d must be at least 2", c.MaxDeliver)
	case len(c.Backoff) == 0:
		return errors.New("consumer: PROCESSOR_BACKOFF must hold at least one delay")
	case len(c.Backoff) > MaxBackoffDelays(c.MaxDeliver):
		return fmt.Errorf("consumer: PROCESSOR_BACKOFF has %d delays; PROCESSOR_MAX_DELIVER %d allows at most %d",
			len(c.Backoff), c.MaxDeliver, c.MaxDeliver-1)
	}
	for i, d := range c.Backoff {
		if d <= 0 {
			return fmt.Errorf("consumer: PROCESSOR_BACKOFF delay #%d (%s) must be positive", i+1, d)
		}
	}
	return nil
}

// NakDelay returns how long to wait before redelivering a message whose
// delivery number deliveries (1 for the first) failed transiently: the n-th
// delay of the schedule, the last one once the schedule is used up.
func (c ConsumerConfig) NakDelay(deliveries uint64) time.Duration {
	if len(c.Backoff) == 0 {
		return c.AckWait
	}
	i := int(min(max(deliveries, 1)-1, uint64(len(c.Backoff)-1)))
	return c.Backoff[i]
}

// Definition returns the JetStream configuration of the durable consumer.
func (c ConsumerConfig) Definition() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ProcessorConsumer,
		Description:   "paystream processor group: applies Stripe events to Postgres",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    c.MaxDeliver,
		FilterSubject: EventsSubjectPrefix + ">",
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
		MaxAckPending: c.MaxAckPending,
	}
}

// EnsureConsumer creates the durable consumer, or updates it to match c. It
// is idempotent; every processor instance calls it at start-up.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, c ConsumerConfig) (jetstream.Consumer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, EventsStream, c.Definition())
	if err != nil {
		return nil, fmt.Errorf("ensure consumer %s on %s: %w", ProcessorConsumer, EventsStream, err)
	}
	return cons, nil
}

// MaxDeliveriesAdvisorySubject is where nats-server announces that a message
// of the processor consumer ran out of deliveries without being acked or
// terminated (its last AckWait expired, or it was nak'ed on its last delivery).
const MaxDeliveriesAdvisorySubject = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + EventsStream + "." + ProcessorConsumer
