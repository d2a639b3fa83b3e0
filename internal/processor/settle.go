package processor

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/streams"
)

// settlement is one delivery whose handling is over, on its way to the
// broker: the message, what the runtime knows of it, and what became of it.
type settlement struct {
	msg jetstream.Msg
	md  *jetstream.MsgMetadata
	ev  stripeevent.Event // as decoded from the headers; partly empty when they were garbled
	typ string            // ev.Type as a metric label (typeLabel)
	log *slog.Logger      // carries the event id, subject, delivery count and stream sequence

	outcome handling.Outcome // the handler's outcome when err is nil
	err     error            // the handler's (or the header decode's) error
	dec     Decision         // Classify(err, …)
}

// settle carries out s.dec: ack, nak with delay, or copy to STRIPE_DLQ and
// term. confirm makes an ack wait for the broker's confirmation (DoubleAck),
// as single events do, so a lost ack shows up in logs and metrics (the
// handler's idempotency makes the redelivery that follows harmless); the
// acks of a batch go without (Ack): no round trip per event.
func (p *Processor) settle(s settlement, confirm bool) {
	actx, cancel := context.WithTimeout(context.Background(), p.cfg.AckTimeout)
	defer cancel()
	switch s.dec.Verdict {
	case Ack:
		label, known := outcomeLabel(s.outcome)
		if !known {
			s.log.Warn("handler returned an unknown outcome; counted as applied", "handler_outcome", string(s.outcome))
		}
		p.m.events.WithLabelValues(s.typ, label).Inc()
		ack := s.msg.Ack
		if confirm {
			ack = func() error { return s.msg.DoubleAck(actx) }
		}
		if err := ack(); err != nil {
			p.m.ackErrors.WithLabelValues("ack").Inc()
			s.log.Error("ack failed; sending it again until the broker has it (else the event is redelivered after AckWait and found already processed)",
				"outcome", label, "error", err)
			p.lost.add(s.msg, p.cfg.Now().Add(p.cfg.Consumer.AckWait), s.log)
			return
		}
		// A DLQ replay keeps the original receipt time; the days it spent
		// waiting for a human are not pipeline latency.
		if !s.ev.ReceivedAt.IsZero() && s.ev.Source != "dlq-replay" {
			p.m.endToEnd.Observe(max(p.cfg.Now().Sub(s.ev.ReceivedAt), 0).Seconds())
		}
		s.log.Debug("event handled", "outcome", label, "type", s.ev.Type)

	case Retry:
		p.m.events.WithLabelValues(s.typ, outcomeRetried).Inc()
		s.log.Warn("event failed transiently; retrying", "outcome", outcomeRetried, "error", s.err,
			"code", string(fault.CodeOf(s.err)), "retry_in", s.dec.Delay.String())
		if err := s.msg.NakWithDelay(s.dec.Delay); err != nil {
			p.m.ackErrors.WithLabelValues("nak").Inc()
			s.log.Error("nak failed; the event will be redelivered after AckWait", "error", err)
		}

	case DeadLetter:
		res, err := streams.PublishLetter(actx, p.js, streams.Letter{
			Subject: s.msg.Subject(), Header: s.msg.Headers(), Data: s.msg.Data(), StreamSeq: s.md.Sequence.Stream,
			Reason: s.dec.Reason, LastError: errText(s.err), Deliveries: s.md.NumDelivered, At: p.cfg.Now(),
		})
		if err != nil {
			// Never Term without a DLQ copy: try again later. On the last
			// delivery the broker then emits MAX_DELIVERIES and the
			// advisory listener makes the copy.
			p.m.ackErrors.WithLabelValues("dlq_publish").Inc()
			p.m.events.WithLabelValues(s.typ, outcomeRetried).Inc()
			delay := p.cfg.Consumer.NakDelay(s.md.NumDelivered)
			s.log.Error("dead-letter copy failed; retrying the event", "outcome", outcomeRetried, "reason", s.dec.Reason,
				"handler_error", errText(s.err), "error", err, "retry_in", delay.String())
			if err := s.msg.NakWithDelay(delay); err != nil {
				p.m.ackErrors.WithLabelValues("nak").Inc()
			}
			return
		}
		p.m.events.WithLabelValues(s.typ, outcomeDeadLettered).Inc()
		if !res.Duplicate {
			p.m.deadLetters.WithLabelValues(s.dec.Reason).Inc()
		}
		s.log.Error("event dead-lettered", "outcome", outcomeDeadLettered, "reason", s.dec.Reason, "error", s.err,
			"dlq_seq", res.Sequence)
		if err := s.msg.TermWithReason(s.dec.Reason); err != nil {
			// The copy exists; a redelivery will be dead-lettered again and
			// deduplicated by its dlq-<seq> id.
			p.m.ackErrors.WithLabelValues("term").Inc()
			s.log.Error("term failed after the dead-letter copy", "error", err)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
