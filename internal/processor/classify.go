package processor

import (
	"regexp"
	"time"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/streams"
)

// Verdict is what happens to a message after its handler returned.
type Verdict int

// Verdicts.
const (
	Ack        Verdict = iota // effects committed (or nothing to do): acknowledge
	Retry                     // transient failure: NakWithDelay
	DeadLetter                // permanent failure or retry budget spent: copy to STRIPE_DLQ, then Term
)

func (v Verdict) String() string {
	switch v {
	case Ack:
		return "ack"
	case Retry:
		return "retry"
	default:
		return "dead_letter"
	}
}

// Decision is the classification of one handled delivery.
type Decision struct {
	Verdict Verdict
	Delay   time.Duration // Retry: wait before the next delivery
	Reason  string        // DeadLetter: machine-readable reason (DLQ header, metric label)
}

// Outcome labels beyond handling's success outcomes.
const (
	outcomeRetried      = "retried"
	outcomeDeadLettered = "dead_lettered"
)

// Classify is the one place that turns a handler's result into an action:
//
//	nil error                              → Ack
//	fault.ActionOf = DeadLetter            → DeadLetter, reason fault.ReasonOf
//	fault.ActionOf = Retry, budget left    → Retry after c.NakDelay(deliveries)
//	fault.ActionOf = Retry, last delivery  → DeadLetter, reason max_deliveries
//
// Nothing that failed is ever acked, and nothing is terminated without a
// dead-letter copy (the caller enforces the latter).
func Classify(err error, deliveries uint64, c streams.ConsumerConfig) Decision {
	if err == nil {
		return Decision{Verdict: Ack}
	}
	if fault.ActionOf(err) == fault.DeadLetter {
		return Decision{Verdict: DeadLetter, Reason: safeReason(fault.ReasonOf(err))}
	}
	if deliveries >= uint64(c.MaxDeliver) {
		// JetStream would not deliver it again: dead-letter it ourselves
		// rather than let it silently drop out of the consumer.
		return Decision{Verdict: DeadLetter, Reason: streams.ReasonMaxDeliveries}
	}
	return Decision{Verdict: Retry, Delay: c.NakDelay(deliveries)}
}

// reasonRe is the shape of a reason we put in headers and metric labels.
var reasonRe = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// safeReason keeps metric cardinality and headers sane whatever a handler
// puts in fault.Error.Reason.
func safeReason(r string) string {
	if reasonRe.MatchString(r) {
		return r
	}
	return "other"
}

// outcomeLabel bounds the outcome label to the agreed values; a handler that
// returned something else still committed, so it counts as applied.
func outcomeLabel(o handling.Outcome) (string, bool) {
	switch o {
	case handling.Applied, handling.Duplicate, handling.Ignored:
		return string(o), true
	}
	return string(handling.Applied), false
}

// typeLabel is the event type for metric labels; anything that is not shaped
// like a Stripe type (garbled headers) becomes "unknown".
func typeLabel(t string) string {
	if streams.ValidEventType(t) {
		return t
	}
	return "unknown"
}
