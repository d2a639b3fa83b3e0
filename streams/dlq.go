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

// ErrDeadLetterNotFound means no STRIPE_DLQ message has the sequence asked for.
var ErrDeadLetterNotFound = errors.New("dead letter not found")

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

// DeadLetter copies the delivered message msg to STRIPE_DLQ with the reason,
// the last error and the delivery count, and waits for the PubAck. The
// caller terminates msg only after this returned nil.
func DeadLetter(ctx context.Context, js jetstream.JetStream, msg jetstream.Msg, reason string, lastErr error, deliveries uint64) (PubResult, error) {
	md, err := msg.Metadata()
	if err != nil {
		return PubResult{}, fmt.Errorf("dead-letter %s: read metadata: %w", msg.Subject(), err)
	}
	l := Letter{
		Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data(),
		StreamSeq: md.Sequence.Stream, Reason: reason, Deliveries: deliveries, At: time.Now(),
	}
	if lastErr != nil {
		l.LastError = lastErr.Error()
	}
	return PublishLetter(ctx, js, l)
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

// DeadLetterMsg is a message stored on STRIPE_DLQ, decoded for operators.
type DeadLetterMsg struct {
	Sequence        uint64      // sequence on STRIPE_DLQ
	Subject         string      // stripe.dlq.<endpoint>.<type>
	Stored          time.Time   // when STRIPE_DLQ stored it
	EventID         string      // Stripe event id
	EventType       string      //
	Endpoint        string      //
	Reason          string      // Paystream-Dlq-Reason
	Error           string      // Paystream-Dlq-Error
	Deliveries      uint64      // Paystream-Dlq-Deliveries
	OriginalSubject string      // Paystream-Dlq-Subject
	StreamSeq       uint64      // Paystream-Dlq-Stream-Seq
	At              time.Time   // Paystream-Dlq-At (zero when unparseable)
	Header          nats.Header // every header as stored
	Data            []byte      // the original body
}

// DLQ reads and manages STRIPE_DLQ for operators (`paystream dlq`).
type DLQ struct {
	js jetstream.JetStream
	// Now stamps replays; tests replace it.
	Now func() time.Time
}

// NewDLQ returns the STRIPE_DLQ tools on js.
func NewDLQ(js jetstream.JetStream) *DLQ { return &DLQ{js: js, Now: time.Now} }

func (d *DLQ) stream(ctx context.Context) (jetstream.Stream, error) {
	s, err := d.js.Stream(ctx, DLQStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", DLQStream, err)
	}
	return s, nil
}

// Depth returns how many messages STRIPE_DLQ holds.
func (d *DLQ) Depth(ctx context.Context) (uint64, error) {
	s, err := d.stream(ctx)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s info: %w", DLQStream, err)
	}
	return info.State.Msgs, nil
}

// List returns up to limit dead letters with a sequence of at least from,
// oldest first. Purged sequences are skipped.
func (d *DLQ) List(ctx context.Context, from uint64, limit int) ([]DeadLetterMsg, error) {
	s, err := d.stream(ctx)
	if err != nil {
		return nil, err
	}
	from = max(from, 1)
	var out []DeadLetterMsg
	for len(out) < limit {
		// next_by_subj returns the first message at or after from, so
		// deleted sequences cost nothing.
		raw, err := s.GetMsg(ctx, from, jetstream.WithGetMsgSubject(DLQSubjectPrefix+">"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("list dead letters from seq %d: %w", from, err)
		}
		out = append(out, decodeDeadLetter(raw))
		from = raw.Sequence + 1
	}
	return out, nil
}

// ListAll returns every dead letter stored now, oldest first, without its
// body (acting on a letter needs only its headers; memory stays flat). A
// non-empty reason keeps only the letters dead-lettered with that reason.
// Letters added while it pages are not chased.
func (d *DLQ) ListAll(ctx context.Context, reason string) ([]DeadLetterMsg, error) {
	return d.listAll(ctx, reason, 256)
}

func (d *DLQ) listAll(ctx context.Context, reason string, page int) ([]DeadLetterMsg, error) {
	var out []DeadLetterMsg
	from := uint64(1)
	for {
		letters, err := d.List(ctx, from, page)
		if err != nil {
			return nil, err
		}
		for _, l := range letters {
			if reason == "" || l.Reason == reason {
				l.Data = nil
				out = append(out, l)
			}
		}
		if len(letters) < page {
			return out, nil
		}
		from = letters[len(letters)-1].Sequence + 1
	}
}

// Get returns the dead letter stored at seq on STRIPE_DLQ.
func (d *DLQ) Get(ctx context.Context, seq uint64) (DeadLetterMsg, error) {
	s, err := d.stream(ctx)
	if err != nil {
		return DeadLetterMsg{}, err
	}
	raw, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetterMsg{}, fmt.Errorf("%w: %s seq %d: %w", ErrDeadLetterNotFound, DLQStream, seq, err)
	}
	if err != nil {
		return DeadLetterMsg{}, fmt.Errorf("get dead letter %d: %w", seq, err)
	}
	return decodeDeadLetter(raw), nil
}

// Replay republishes the original event of dead letter seq to STRIPE_EVENTS
// on its original subject, with its original headers, Paystream-Source
// dlq-replay and a new Nats-Msg-Id <event id>-replay-<dlq seq>-<unix seconds>
// (the event id itself would be swallowed by the dedup window). Two replays
// of the same letter within one second are deduplicated, which protects
// against a double click. The dead letter stays; Purge removes it.
func (d *DLQ) Replay(ctx context.Context, seq uint64) (PubResult, error) {
	dl, err := d.Get(ctx, seq)
	if err != nil {
		return PubResult{}, err
	}
	eventID, err := dl.Replayable()
	if err != nil {
		return PubResult{}, fmt.Errorf("replay dead letter %d: %w", seq, err)
	}
	subj := dl.OriginalSubject
	m := nats.NewMsg(subj)
	m.Data = dl.Data
	for k, vs := range dl.Header {
		if strings.HasPrefix(k, "Paystream-Dlq-") || strings.HasPrefix(k, "Nats-") {
			continue
		}
		for _, v := range vs {
			m.Header.Add(k, v)
		}
	}
	m.Header.Set(HeaderMsgID, fmt.Sprintf("%s-replay-%d-%d", eventID, seq, d.Now().Unix()))
	m.Header.Set(HeaderSource, "dlq-replay")
	res, err := PublishMsg(ctx, d.js, m)
	if err != nil {
		return PubResult{}, fmt.Errorf("replay dead letter %d: %w", seq, err)
	}
	return res, nil
}

// Replayable makes the checks Replay makes before it publishes (a dry run
// makes them too): the original subject must be a
// stripe.events.<endpoint>.<type> subject, which also keeps a tampered header
// from publishing anywhere else, and the letter must name its event. It
// returns that event id.
func (l DeadLetterMsg) Replayable() (eventID string, err error) {
	if _, _, ok := splitEventSubject(l.OriginalSubject); !ok {
		return "", fmt.Errorf("original subject %q is not a %s<endpoint>.<type> subject", l.OriginalSubject, EventsSubjectPrefix)
	}
	eventID = l.EventID
	if eventID == "" {
		eventID = l.Header.Get(HeaderDLQOriginalMsgID)
	}
	if eventID == "" {
		return "", errors.New("it carries no event id")
	}
	return eventID, nil
}

// Purge deletes dead letter seq from STRIPE_DLQ.
func (d *DLQ) Purge(ctx context.Context, seq uint64) error {
	s, err := d.stream(ctx)
	if err != nil {
		return err
	}
	// The server answers a delete of a missing sequence with a generic 400,
	// so look first: operators need "not found" to be recognisable.
	if _, err := s.GetMsg(ctx, seq); errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("%w: %s seq %d: %w", ErrDeadLetterNotFound, DLQStream, seq, err)
	}
	if err := s.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("purge dead letter %d: %w", seq, err)
	}
	return nil
}

func decodeDeadLetter(raw *jetstream.RawStreamMsg) DeadLetterMsg {
	h := raw.Header
	if h == nil {
		h = nats.Header{}
	}
	dl := DeadLetterMsg{
		Sequence:        raw.Sequence,
		Subject:         raw.Subject,
		Stored:          raw.Time,
		EventID:         h.Get(HeaderEventID),
		EventType:       h.Get(HeaderEventType),
		Endpoint:        h.Get(HeaderEndpoint),
		Reason:          h.Get(HeaderDLQReason),
		Error:           h.Get(HeaderDLQError),
		OriginalSubject: h.Get(HeaderDLQSubject),
		Header:          h,
		Data:            raw.Data,
	}
	dl.Deliveries, _ = strconv.ParseUint(h.Get(HeaderDLQDeliveries), 10, 64)
	dl.StreamSeq, _ = strconv.ParseUint(h.Get(HeaderDLQStreamSeq), 10, 64)
	dl.At, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderDLQAt))
	return dl
}
