package streams

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// AdvisoriesStream captures the broker's MAX_DELIVERIES advisories of the
// processor consumer. An advisory is a plain NATS message: published while no
// processor listens (every instance crashed or restarting when an event's
// last AckWait ran out), it would be gone, and with it the only signal that
// the event needs a dead-letter copy. Stored here, it waits for whichever
// instance starts next.
const AdvisoriesStream = "STRIPE_ADVISORIES"

// AdvisoryConsumer is the durable consumer on AdvisoriesStream that every
// processor instance shares: each advisory is worked off by one of them and
// removed (work-queue retention) once its dead-letter copy exists.
const AdvisoryConsumer = "dlq-advisories"

// AdvisoriesDefinition is the stream configuration of AdvisoriesStream.
// Work-queue retention: an advisory is deleted when acked, i.e. when its DLQ
// copy was published. It keeps as long as the dead letters do, so an outage of
// the whole processor group longer than that is the only way to lose one.
// The broker cannot give its advisories a Nats-Msg-Id; the copies are
// deduplicated on STRIPE_DLQ instead (dlq-<stream seq>), so an advisory
// emitted twice (a consumer leader change) still makes one dead letter.
func (c Config) AdvisoriesDefinition() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        AdvisoriesStream,
		Description: "MAX_DELIVERIES advisories of the processor consumer, until a processor made their dead-letter copy",
		Subjects:    []string{MaxDeliveriesAdvisorySubject},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     c.Storage,
		Replicas:    c.Replicas,
		MaxAge:      c.DLQMaxAge,
		Discard:     jetstream.DiscardOld,
	}
}

// AdvisoryAckWait is how long one instance may take over an advisory (read
// the event, publish its copy) before another gets it.
const AdvisoryAckWait = 30 * time.Second

// EnsureAdvisoryConsumer creates or updates the durable consumer on
// AdvisoriesStream. Deliveries are unlimited: an advisory must not be dropped
// because the broker refused the DLQ copy for a while.
func EnsureAdvisoryConsumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	cons, err := js.CreateOrUpdateConsumer(ctx, AdvisoriesStream, jetstream.ConsumerConfig{
		Durable:       AdvisoryConsumer,
		Description:   "paystream processors: dead-letter copies of events that ran out of deliveries",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       AdvisoryAckWait,
		MaxDeliver:    -1,
		MaxAckPending: 64,
	})
	if err != nil {
		return nil, fmt.Errorf("ensure consumer %s on %s: %w", AdvisoryConsumer, AdvisoriesStream, err)
	}
	return cons, nil
}
