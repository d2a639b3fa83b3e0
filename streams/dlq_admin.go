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

// DeadLetteredAt is when the processor dead-lettered l; the broker's store
// time when the header is missing or garbled.
func (l DeadLetterMsg) DeadLetteredAt() time.Time {
	if !l.At.IsZero() {
		return l.At
	}
	return l.Stored
}

// ErrDeadLetterNotFound means no STRIPE_DLQ message has the sequence asked for.
var ErrDeadLetterNotFound = errors.New("dead letter not found")

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

// Redriven is what Redrive did with one dead letter.
type Redriven struct {
	PubResult       // the replayed event on STRIPE_EVENTS
	Purged    bool  // the dead letter was deleted
	PurgeErr  error // why it was not, when it was not kept
}

// Redrive replays dead letter seq (Replay) and then, unless keep, deletes it
// (Purge). The delete comes only after STRIPE_EVENTS acknowledged the event,
// so a letter never goes before its event is safe; should the delete fail,
// the letter stays (Redriven.PurgeErr) and replaying it again is harmless,
// since the processor applies an event id once. err is the replay's error.
func (d *DLQ) Redrive(ctx context.Context, seq uint64, keep bool) (Redriven, error) {
	res, err := d.Replay(ctx, seq)
	if err != nil {
		return Redriven{}, err
	}
	out := Redriven{PubResult: res}
	if keep {
		return out, nil
	}
	if out.PurgeErr = d.Purge(ctx, seq); out.PurgeErr == nil {
		out.Purged = true
	}
	return out, nil
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
