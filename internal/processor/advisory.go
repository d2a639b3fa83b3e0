package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/streams"
)

// maxDeliveriesAdvisory is the part of nats-server's
// io.nats.jetstream.advisory.v1.max_deliver event we use.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// watchAdvisories is the safety net for events that ran out of deliveries
// without a verdict from a handler: an instance crashed or hung on the last
// delivery, or the DLQ copy failed then. The broker's MAX_DELIVERIES
// advisories are captured by the stream STRIPE_ADVISORIES, so one published
// while no processor ran is not lost; every instance works off its shared
// durable consumer, copying the stored event to STRIPE_DLQ with reason
// max_deliveries, and acks the advisory only once the copy exists. Copies are
// deduplicated by their dlq-<stream seq> id, and only the first is counted.
func (p *Processor) watchAdvisories(ctx context.Context) {
	retry := time.Second
	for {
		err := p.workAdvisories(ctx)
		if ctx.Err() != nil {
			return
		}
		p.log.Error("cannot work off max-deliveries advisories; retrying", "stream", streams.AdvisoriesStream,
			"error", err, "retry_in", retry.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(retry*2, 30*time.Second)
	}
}

// workAdvisories consumes STRIPE_ADVISORIES until ctx ends (nil) or the
// subscription fails.
func (p *Processor) workAdvisories(ctx context.Context) error {
	ectx, cancel := context.WithTimeout(ctx, p.cfg.AckTimeout)
	cons, err := streams.EnsureAdvisoryConsumer(ectx, p.js)
	cancel()
	if err != nil {
		return err
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) { p.onAdvisoryMsg(ctx, msg) },
		jetstream.PullMaxMessages(16),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			p.log.Debug("advisory consume error", "error", err)
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", streams.AdvisoriesStream, err)
	}
	defer cc.Stop()
	select {
	case <-ctx.Done():
		return nil
	case <-cc.Closed():
		return errors.New("advisory subscription ended")
	}
}

// onAdvisoryMsg makes the dead-letter copy one stored advisory asks for and
// acks the advisory, or gives it back with a growing delay when the copy
// could not be made (the broker refused it, the event could not be read).
func (p *Processor) onAdvisoryMsg(ctx context.Context, msg jetstream.Msg) {
	if err := p.onAdvisory(ctx, msg.Data()); err != nil {
		n := uint64(1)
		if md, merr := msg.Metadata(); merr == nil {
			n = md.NumDelivered
		}
		delay := min(time.Duration(1<<min(n, 6))*250*time.Millisecond, 30*time.Second)
		p.m.ackErrors.WithLabelValues("dlq_publish").Inc()
		p.log.Error("could not dead-letter an event that exhausted its deliveries; retrying", "error", err,
			"attempt", n, "retry_in", delay.String())
		if err := msg.NakWithDelay(delay); err != nil {
			p.m.ackErrors.WithLabelValues("nak").Inc()
		}
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.AckTimeout)
	defer cancel()
	if err := msg.DoubleAck(actx); err != nil {
		// Redelivered later; the copy is deduplicated.
		p.m.ackErrors.WithLabelValues("ack").Inc()
	}
}

// onAdvisory copies the event an advisory names to STRIPE_DLQ. A nil error
// means the advisory is done with: copied, not ours, unreadable, or naming an
// event that no longer exists.
func (p *Processor) onAdvisory(ctx context.Context, data []byte) error {
	var adv maxDeliveriesAdvisory
	if err := json.Unmarshal(data, &adv); err != nil || adv.StreamSeq == 0 {
		p.log.Error("unreadable max-deliveries advisory", "error", err, "advisory", string(data))
		return nil
	}
	if adv.Stream != streams.EventsStream || adv.Consumer != streams.ProcessorConsumer {
		return nil
	}
	log := p.log.With("stream_seq", adv.StreamSeq, "num_delivered", adv.Deliveries)
	err := p.copyExhausted(ctx, adv, log)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		log.Error("event exhausted its deliveries but is no longer on STRIPE_EVENTS; nothing to dead-letter", "error", err)
		return nil
	}
	return err
}

func (p *Processor) copyExhausted(ctx context.Context, adv maxDeliveriesAdvisory, log *slog.Logger) error {
	actx, cancel := context.WithTimeout(ctx, p.cfg.AckTimeout)
	defer cancel()
	s, err := p.js.Stream(actx, streams.EventsStream)
	if err != nil {
		return err
	}
	raw, err := s.GetMsg(actx, adv.StreamSeq)
	if err != nil {
		return err
	}
	res, err := streams.PublishLetter(actx, p.js, streams.Letter{
		Subject: raw.Subject, Header: raw.Header, Data: raw.Data, StreamSeq: raw.Sequence,
		Reason:     streams.ReasonMaxDeliveries,
		LastError:  "delivery budget exhausted without a handler verdict (ack wait expired on the last delivery, or the dead-letter copy failed then)",
		Deliveries: adv.Deliveries, At: p.cfg.Now(),
	})
	if err != nil {
		return err
	}
	if !res.Duplicate {
		typ := typeLabel(raw.Header.Get(streams.HeaderEventType))
		p.m.deadLetters.WithLabelValues(streams.ReasonMaxDeliveries).Inc()
		p.m.events.WithLabelValues(typ, outcomeDeadLettered).Inc()
		log.Error("event exhausted its deliveries; dead-lettered", "stripe_event_id", raw.Header.Get(streams.HeaderEventID),
			"subject", raw.Subject, "outcome", outcomeDeadLettered, "reason", streams.ReasonMaxDeliveries, "dlq_seq", res.Sequence)
	}
	return nil
}
