package streams

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// HeaderDLQOriginalMsgID keeps the Nats-Msg-Id the message had on
// STRIPE_EVENTS: the DLQ copy carries its own (dlq-<stream seq>).
const HeaderDLQOriginalMsgID = "Paystream-Dlq-Original-Msg-Id"

// Reasons the runtime itself dead-letters with; handlers add their own
// (fault.Error.Reason, e.g. amount_mismatch).
const (
	ReasonMaxDeliveries  = "max_deliveries"  // transient failures outlasted the retry budget
	ReasonInvalidHeaders = "invalid_headers" // Paystream-* headers missing or garbled
	ReasonInvalidPayload = "invalid_payload" // body is not a Stripe event JSON object
)

// maxDLQErrorLen bounds the error text copied into a header.
const maxDLQErrorLen = 1024

// unknownDLQSubject receives dead letters whose origin cannot be named safely.
const unknownDLQSubject = DLQSubjectPrefix + "unknown.unknown"

// Letter is one message on its way to STRIPE_DLQ.
type Letter struct {
	Subject    string      // subject on STRIPE_EVENTS
	Header     nats.Header // original headers
	Data       []byte      // original body
	StreamSeq  uint64      // sequence on STRIPE_EVENTS; the DLQ dedup key
	Reason     string      // machine-readable reason
	LastError  string      // the last error, for humans
	Deliveries uint64      // delivery count when dead-lettered
	At         time.Time   // when
}

// PublishLetter publishes l to STRIPE_DLQ on stripe.dlq.<endpoint>.<type>
// with Nats-Msg-Id dlq-<stream seq>, so a second copy of the same message
// (a retry, or the advisory listener racing the processor) is deduplicated.
func PublishLetter(ctx context.Context, js jetstream.JetStream, l Letter) (PubResult, error) {
	if l.StreamSeq == 0 {
		return PubResult{}, errors.New("dead-letter: stream sequence is 0")
	}
	m := nats.NewMsg(dlqSubjectFor(l.Subject, l.Header))
	m.Data = l.Data
	for k, vs := range l.Header {
		// Nats-* headers steer JetStream (dedup id, expected sequence,
		// rollup, TTL); copied verbatim they could make the DLQ publish
		// fail or misbehave. The original id is kept under our own name.
		if strings.HasPrefix(k, "Nats-") {
			continue
		}
		for _, v := range vs {
			m.Header.Add(k, v)
		}
	}
	if id := l.Header.Get(HeaderMsgID); id != "" {
		m.Header.Set(HeaderDLQOriginalMsgID, headerValue(id, 256))
	}
	reason := l.Reason
	if reason == "" {
		reason = "unknown"
	}
	m.Header.Set(HeaderMsgID, "dlq-"+strconv.FormatUint(l.StreamSeq, 10))
	m.Header.Set(HeaderDLQReason, headerValue(reason, 128))
	m.Header.Set(HeaderDLQError, headerValue(l.LastError, maxDLQErrorLen))
	m.Header.Set(HeaderDLQDeliveries, strconv.FormatUint(l.Deliveries, 10))
	m.Header.Set(HeaderDLQSubject, l.Subject)
	m.Header.Set(HeaderDLQStreamSeq, strconv.FormatUint(l.StreamSeq, 10))
	m.Header.Set(HeaderDLQAt, l.At.UTC().Format(time.RFC3339Nano))
	res, err := PublishMsg(ctx, js, m)
	if err != nil {
		return PubResult{}, fmt.Errorf("dead-letter stream seq %d: %w", l.StreamSeq, err)
	}
	return res, nil
}

// dlqSubjectFor derives stripe.dlq.<endpoint>.<type> from the original
// subject, else from the endpoint and type headers, else a fixed subject: a
// dead letter must never be refused because of what made it one.
func dlqSubjectFor(subject string, h nats.Header) string {
	if endpoint, typ, ok := splitEventSubject(subject); ok {
		if s, err := DLQSubject(endpoint, typ); err == nil {
			return s
		}
	}
	if s, err := DLQSubject(h.Get(HeaderEndpoint), h.Get(HeaderEventType)); err == nil {
		return s
	}
	return unknownDLQSubject
}

// splitEventSubject splits stripe.events.<endpoint>.<type> into its parts
// and reports whether both are valid subject tokens.
func splitEventSubject(subject string) (endpoint, typ string, ok bool) {
	rest, ok := strings.CutPrefix(subject, EventsSubjectPrefix)
	if !ok {
		return "", "", false
	}
	endpoint, typ, ok = strings.Cut(rest, ".")
	if !ok || !ValidEndpoint(endpoint) || !ValidEventType(typ) {
		return "", "", false
	}
	return endpoint, typ, true
}

// headerValue makes s safe as a header value: no control characters (a CR
// or LF would end the header block), at most n bytes.
func headerValue(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") // drop a rune cut in half
	}
	return s
}
