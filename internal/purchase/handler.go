// Package purchase applies Stripe events to purchases in Postgres: one
// transaction per event holds the stripe_events row, the purchase change, the
// content access row and the outbox events. Handlers are found by event type
// in a dispatch table; each event type lives in its own file.
package purchase

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

// Config tunes the handler.
type Config struct {
	// Access is the access rule's policy (partial refunds keep access
	// unless Access.RevokeOnPartialRefund).
	Access AccessPolicy
	// Now is the clock for processed_at, updated_at and outbox times;
	// default time.Now. Agreement windows are judged at the Stripe event's
	// own time, never at Now, so replays split the same way.
	Now func() time.Time
}

// Handler applies Stripe events to purchases. It implements handling.Handler.
type Handler struct {
	db     *bun.DB
	cfg    Config
	m      *Metrics
	log    *slog.Logger
	routes map[string]route
	// beforeCommit, when set (tests only), runs just before a batch commits.
	beforeCommit beforeCommitHook
	// path is how HandleBatch applies a batch; the zero value is the
	// set-based fast path, the others are for tests and comparisons.
	path batchPath
}

var _ handling.Handler = (*Handler)(nil)

// route applies one event type inside the event's transaction. It reports
// what it did through rec; an error rolls everything back, including the
// stripe_events row, so a retried or replayed event starts afresh.
type route func(ctx context.Context, tx bun.Tx, ev event, rec *record) error

// event is a delivered event with its decoded Stripe envelope.
type event struct {
	stripeevent.Event
	stripe *envelope
	// session is data.object of a checkout.session.* event, decoded with
	// the envelope in one pass; nil when it did not decode as a session
	// (decodeSession then reports why from the raw object).
	session *checkoutObject
	at      time.Time // Stripe's event time: agreement windows are judged at it
}

// envelope is what the handler reads of a Stripe event: data.object stays
// raw until its route decodes it into the type it expects. (stripe.Event
// would also decode data.object into a map, a second full decode of the
// body that nothing reads.)
type envelope struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Created    int64  `json:"created"`
	APIVersion string `json:"api_version"`
	Data       *struct {
		Raw json.RawMessage `json:"object"`
	} `json:"data"`
}

// NewHandler returns the purchase handler.
func NewHandler(bdb *bun.DB, cfg Config, m *Metrics, log *slog.Logger) (*Handler, error) {
	if bdb == nil || m == nil || log == nil {
		return nil, errors.New("purchase handler: db, metrics and logger are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{db: bdb, cfg: cfg, m: m, log: log.With("component", "purchase")}
	h.routes = h.dispatch()
	return h, nil
}

// Types lists, sorted, the Stripe event types the handler applies; every
// other type is recorded as ignored.
func (h *Handler) Types() []string { return sortedKeys(h.routes) }

// HandledTypes is Types without a handler, for tools that need the list but
// no database (reconcile's event type filter, docs).
func HandledTypes() []string { return sortedKeys((&Handler{}).dispatch()) }

func sortedKeys(m map[string]route) []string {
	out := make([]string, 0, len(m))
	for t := range m {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Handle applies ev in one transaction. It returns Duplicate when ev's id was
// applied before or its change was already made under another event id,
// Ignored for unhandled types, and a fault error otherwise: Invalid (dead
// letter) for input that can never apply, Pending for an event whose purchase
// does not exist yet, Unavailable/Internal for retryable failures.
func (h *Handler) Handle(ctx context.Context, hev stripeevent.Event) (handling.Outcome, error) {
	log := h.eventLog(hev)
	ev, err := decodeEvent(hev)
	if err != nil {
		log.Warn("stripe event rejected", "reason", fault.ReasonOf(err), "error", err)
		return "", err
	}
	var rec *record
	tctx, span := startTxSpan(ctx, 1)
	err = h.db.RunInTx(tctx, nil, func(ctx context.Context, tx bun.Tx) error {
		rec, err = h.apply(ctx, tx, ev)
		return err
	})
	endTxSpan(span, err)
	if errors.Is(err, errSeen) {
		return h.committed(log, &record{seen: true}), nil
	}
	if err != nil {
		// The route failed, but its event may have been applied before
		// (a redelivery meeting a changed world): that is a duplicate,
		// as when the claim came first. Only failures pay this lookup.
		if seen, serr := eventSeen(ctx, h.db, ev.ID); serr == nil && seen {
			return h.committed(log, &record{seen: true}), nil
		}
		return "", h.notApplied(log, err)
	}
	return h.committed(log, rec), nil
}

func (h *Handler) eventLog(hev stripeevent.Event) *slog.Logger {
	return h.log.With("stripe_event_id", hev.ID, "type", hev.Type, "subject", hev.Subject, "num_delivered", hev.Deliveries)
}

// apply is the work of one event inside tx: run its route, then claim its
// id in stripe_events with the outcome (one INSERT, no UPDATE afterwards).
// errSeen means the id was claimed already: tx (or the batch's savepoint)
// must be rolled back, which discards whatever the route wrote. Any other
// error means the same.
//
// Claiming last keeps the guarantees of claiming first: a concurrent copy of
// the event changes the same purchase, so it waits on the purchase row (or
// on its insert) and then finds the change made; an event with no purchase
// to lock waits on the stripe_events key instead. Either way the later copy
// finds the id claimed, rolls back and reports a duplicate, so one event
// never applies twice.
func (h *Handler) apply(ctx context.Context, tx bun.Tx, ev event) (*record, error) {
	// processed_at is when handling began, as when the claim came first.
	start := h.cfg.Now()
	rec := &record{outcome: model.EventApplied}
	if rt, handled := h.routes[ev.Type]; !handled {
		rec.outcome = model.EventIgnored
	} else if err := rt(ctx, tx, ev, rec); err != nil {
		return nil, err
	}
	fresh, err := insertEvent(ctx, tx, ev, rec, start)
	if err != nil {
		return nil, err
	}
	if !fresh {
		return nil, errSeen
	}
	return rec, nil
}

// errSeen reports that an event's id is in stripe_events already.
var errSeen = errors.New("stripe event was handled before")

// notApplied classifies and logs the failure of an event whose effects were
// rolled back.
func (h *Handler) notApplied(log *slog.Logger, err error) error {
	err = classify(err)
	log.Warn("stripe event not applied", "code", fault.CodeOf(err), "reason", fault.ReasonOf(err), "error", err)
	return err
}

// committed counts and logs an event whose transaction committed; metrics
// are never counted for effects that were rolled back.
func (h *Handler) committed(log *slog.Logger, rec *record) handling.Outcome {
	for _, f := range rec.effects {
		f(h.m)
	}
	out := rec.result()
	log.Info("stripe event handled", "outcome", out, "purchase_id", rec.purchaseIDString(), "note", rec.note)
	return out
}

// record is what a route did.
type record struct {
	seen       bool   // the event id was in stripe_events already
	outcome    string // model.Event*
	note       string // why nothing changed (stripe_events.error)
	purchaseID *uuid.UUID
	effects    effects
}

func (r *record) duplicate(id uuid.UUID, note string) {
	r.outcome, r.note, r.purchaseID = model.EventDuplicate, note, &id
}

func (r *record) recorded(id *uuid.UUID, note string) {
	r.outcome, r.note, r.purchaseID = model.EventRecorded, note, id
}

func (r *record) applied(id uuid.UUID) {
	r.outcome, r.purchaseID = model.EventApplied, &id
}

func (r *record) result() handling.Outcome {
	switch {
	case r.seen || r.outcome == model.EventDuplicate:
		return handling.Duplicate
	case r.outcome == model.EventIgnored:
		return handling.Ignored
	default:
		return handling.Applied
	}
}

func (r *record) purchaseIDString() string {
	if r.purchaseID == nil {
		return ""
	}
	return r.purchaseID.String()
}

// decodeEvent checks the delivered event against its payload: a payload that
// is not a Stripe event, or disagrees with the headers the runtime read, is
// hostile or corrupt and can never apply.
func decodeEvent(hev stripeevent.Event) (event, error) {
	if hev.ID == "" || len(hev.ID) > 255 {
		return event{}, fault.New(fault.Invalid, "invalid_payload", "event id %q is empty or too long", hev.ID)
	}
	if !streams.ValidEventType(hev.Type) {
		return event{}, fault.New(fault.Invalid, "invalid_payload", "event type %q is not a Stripe event type", hev.Type)
	}
	se, sess, err := decodeBody(hev)
	if err != nil {
		return event{}, err
	}
	if se.ID != hev.ID || se.Type != hev.Type {
		return event{}, fault.New(fault.Invalid, "invalid_payload",
			"payload is event %q of type %q but was delivered as %q of type %q", se.ID, se.Type, hev.ID, hev.Type)
	}
	at := hev.Created
	if at.IsZero() && se.Created > 0 {
		at = time.Unix(se.Created, 0)
	}
	if at.IsZero() {
		return event{}, fault.New(fault.Invalid, "invalid_payload", "event %s has no creation time", hev.ID)
	}
	if hev.Endpoint == "" {
		hev.Endpoint = streams.DefaultEndpoint
	}
	if hev.APIVersion == "" {
		hev.APIVersion = se.APIVersion
	}
	return event{Event: hev, stripe: &se, session: sess, at: at.UTC()}, nil
}

// sessionEnvelope is envelope with data.object decoded as a checkout session.
type sessionEnvelope struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Created    int64  `json:"created"`
	APIVersion string `json:"api_version"`
	Data       *struct {
		Object *checkoutObject `json:"object"`
	} `json:"data"`
}

// decodeBody decodes hev's payload once: a checkout.session.* event into its
// envelope and its session together, any other into the envelope with
// data.object kept raw for its route. A session event whose object does not
// decode as a session is decoded the generic way, so decodeSession reports
// what is wrong with it.
func decodeBody(hev stripeevent.Event) (envelope, *checkoutObject, error) {
	if strings.HasPrefix(hev.Type, "checkout.session.") {
		var sb sessionEnvelope
		if json.Unmarshal(hev.Payload, &sb) == nil && sb.Data != nil && sb.Data.Object != nil {
			return envelope{ID: sb.ID, Type: sb.Type, Created: sb.Created, APIVersion: sb.APIVersion}, sb.Data.Object, nil
		}
	}
	var se envelope
	if err := json.Unmarshal(hev.Payload, &se); err != nil {
		return envelope{}, nil, fault.Wrap(err, fault.Invalid, "invalid_payload", "payload of "+hev.ID+" is not a Stripe event JSON")
	}
	return se, nil, nil
}

// insertEvent claims ev's id in stripe_events with rec's outcome. It reports
// false when the id is there already. A concurrent transaction inserting the
// same id blocks on the primary key until the first commits (then false) or
// rolls back (then true): duplicates handled at once by several instances
// serialize here at the latest.
func insertEvent(ctx context.Context, tx bun.Tx, ev event, rec *record, now time.Time) (bool, error) {
	row := eventRow(ev, rec, now)
	res, err := tx.NewInsert().Model(&row).On("CONFLICT (event_id) DO NOTHING").Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("record stripe event %s: %w", ev.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("record stripe event %s: %w", ev.ID, err)
	}
	return n == 1, nil
}

// eventRow is the stripe_events row of ev with rec's outcome, handled at now.
func eventRow(ev event, rec *record, now time.Time) model.StripeEvent {
	created := ev.at
	row := model.StripeEvent{
		EventID: ev.ID, Type: ev.Type, Endpoint: ev.Endpoint, Livemode: ev.Livemode,
		APIVersion: ev.APIVersion, StripeCreatedAt: &created, ProcessedAt: now.UTC(),
		Outcome: rec.outcome, PurchaseID: rec.purchaseID, Payload: model.JSON(ev.Payload),
	}
	if rec.note != "" {
		row.Error = &rec.note
	}
	if !ev.ReceivedAt.IsZero() {
		r := ev.ReceivedAt.UTC()
		row.ReceivedAt = &r
	}
	return row
}

// eventSeen reports whether id is in stripe_events.
func eventSeen(ctx context.Context, idb bun.IDB, id string) (bool, error) {
	seen, err := idb.NewSelect().Model((*model.StripeEvent)(nil)).Where("event_id = ?", id).Exists(ctx)
	if err != nil {
		return false, fmt.Errorf("look up stripe event %s: %w", id, err)
	}
	return seen, nil
}

// classify gives every error that is not a fault.Error yet its code:
// anything transient (connection loss, serialization failure, deadlock, a
// unique violation lost to a concurrent writer) is retried; data the
// database refuses by a CHECK or type rule can never apply.
func classify(err error) error {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return err
	}
	state := db.SQLState(err)
	switch {
	case state == db.UniqueViolation:
		return fault.Wrap(err, fault.Unavailable, "conflict", "concurrent write to the same purchase; retry")
	case state == db.CheckViolation:
		return fault.Wrap(err, fault.Invalid, "constraint_violation", "the event would break a database rule")
	case len(state) == 5 && state[:2] == "22":
		return fault.Wrap(err, fault.Invalid, "invalid_payload", "the database refuses a value of the event")
	case errors.Is(err, context.Canceled) || db.IsTransient(err):
		return fault.Wrap(err, fault.Unavailable, "database_unavailable", "database unavailable")
	}
	return fault.Wrap(err, fault.Internal, "internal", "apply stripe event")
}
