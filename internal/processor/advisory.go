package processor

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
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

// advisoryAttempts bounds the copies tried for one advisory: the message stays
// on STRIPE_EVENTS, so a later advisory-free audit can still find it.
const advisoryAttempts = 8

// watchAdvisories is the safety net for events that ran out of deliveries
// without a verdict from a handler: an instance crashed or hung on the last
// delivery, or the DLQ copy failed then. For each MAX_DELIVERIES advisory it
// copies the stored message to STRIPE_DLQ with reason max_deliveries.
//
// Every instance listens (no queue group): advisories are plain NATS messages
// and would be lost with a single listener that is restarting. The copies are
// deduplicated by their dlq-<stream seq> id, and only the first is counted.
func (p *Processor) watchAdvisories(ctx context.Context) {
	ch := make(chan *nats.Msg, 1024)
	sub, err := p.js.Conn().ChanSubscribe(streams.MaxDeliveriesAdvisorySubject, ch)
	if err != nil {
		p.log.Error("cannot subscribe to max-deliveries advisories; exhausted events will not be dead-lettered automatically",
			"subject", streams.MaxDeliveriesAdvisorySubject, "error", err)
		return
	}
	defer func() { _ = sub.Unsubscribe() }()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-ch:
			p.onAdvisory(ctx, m.Data)
		}
	}
}

func (p *Processor) onAdvisory(ctx context.Context, data []byte) {
	var adv maxDeliveriesAdvisory
	if err := json.Unmarshal(data, &adv); err != nil || adv.StreamSeq == 0 {
		p.log.Error("unreadable max-deliveries advisory", "error", err, "advisory", string(data))
		return
	}
	if adv.Stream != streams.EventsStream || adv.Consumer != streams.ProcessorConsumer {
		return
	}
	log := p.log.With("stream_seq", adv.StreamSeq, "num_delivered", adv.Deliveries)
	wait := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := p.copyExhausted(ctx, adv, log)
		if err == nil {
			return
		}
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			log.Error("event exhausted its deliveries but is no longer on STRIPE_EVENTS; nothing to dead-letter", "error", err)
			return
		}
		if attempt == advisoryAttempts || ctx.Err() != nil {
			p.m.ackErrors.WithLabelValues("dlq_publish").Inc()
			log.Error("could not dead-letter an event that exhausted its deliveries; it stays on STRIPE_EVENTS",
				"error", err, "attempts", attempt)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(wait*2, 10*time.Second)
	}
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
