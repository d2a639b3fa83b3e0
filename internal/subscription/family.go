package subscription

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/eventtx"
	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/streams"
)

// Family is the subscription family of the processor's event route table
// (package eventtx): it routes the types only subscriptions have
// (EventTypes), and applies the shared ones the purchase family hands it
// (a checkout session in subscription mode, a refund or dispute of an
// invoice's charge; it implements purchase.Subscriptions). In the event's
// transaction it applies the event to the subscription and its invoices
// (Store), posts the invoice's money to the ledger, writes the
// subscriptions.* events to the outbox and, after the commit, counts.
type Family struct {
	cfg   Config
	store *Store
	m     *Metrics
	log   *slog.Logger
}

// NewFamily returns the family of cfg, refetching from Stripe through f
// (NewFetcher).
func NewFamily(cfg Config, f Fetcher, m *Metrics, log *slog.Logger) (*Family, error) {
	if m == nil || log == nil {
		return nil, errors.New("subscription: metrics and logger are required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	store, err := NewStore(f, cfg.Now)
	if err != nil {
		return nil, err
	}
	return &Family{cfg: cfg, store: store, m: m, log: log.With("component", "subscription")}, nil
}

// EventFamily is the family's share of the route table, for eventtx.New
// beside the purchase family.
func (f *Family) EventFamily() eventtx.Family {
	return eventtx.Family{Name: "subscription", Routes: f.routes()}
}

// HandledTypes lists, sorted, the event types the family routes itself; the
// shared ones (checkout.session.completed, charge.refunded,
// charge.dispute.*) are the purchase family's routes.
func HandledTypes() []string { return slices.Sorted(slices.Values(EventTypes)) }

// routes is the family's part of the route table: every type it routes
// reads data.object raw and decodes it with Decode, once, in the shape of
// whichever API version sent it.
func (f *Family) routes() map[string]eventtx.Route {
	r := make(map[string]eventtx.Route, len(EventTypes))
	for _, typ := range EventTypes {
		r[typ] = eventtx.On(objectOf(typ), f.route)
	}
	return r
}

// objectOf names the data.object of typ, for messages.
func objectOf(typ string) string {
	switch typ {
	case TypeInvoicePaid, TypeInvoicePaymentFailed:
		return "invoice"
	case TypeInvoicePaymentPaid:
		return "invoice_payment"
	}
	return "subscription"
}

// route applies an event of one of the family's own types.
func (f *Family) route(ctx context.Context, tx bun.Tx, ev eventtx.Event, obj *json.RawMessage, rec *eventtx.Record) error {
	sev, err := Decode(ev.ID, ev.Type, ev.At.Unix(), ev.Livemode, *obj)
	if err != nil {
		return err
	}
	return f.apply(ctx, tx, ev, sev, rec)
}

// Checkout applies checkout.session.completed of a session in subscription
// mode (purchase.Subscriptions).
func (f *Family) Checkout(ctx context.Context, tx bun.Tx, ev eventtx.Event, rec *eventtx.Record) error {
	sev, err := decodePayload(ev)
	if err != nil {
		return err
	}
	return f.apply(ctx, tx, ev, sev, rec)
}

// Charge applies charge.refunded or charge.dispute.* of a charge that pays
// no purchase (purchase.Subscriptions); handled is false when it pays no
// invoice paystream recorded either.
func (f *Family) Charge(ctx context.Context, tx bun.Tx, ev eventtx.Event, rec *eventtx.Record) (handled bool, err error) {
	sev, err := decodePayload(ev)
	if err != nil {
		return false, err
	}
	err = f.apply(ctx, tx, ev, sev, rec)
	if errors.Is(err, ErrInvoiceNotFound) {
		return false, nil
	}
	return err == nil, err
}

// decodePayload decodes a shared event the purchase family decoded for
// itself: only these take a second pass over the payload.
func decodePayload(ev eventtx.Event) (Event, error) {
	var env struct {
		Data struct {
			Object json.RawMessage `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(ev.Payload, &env); err != nil {
		return Event{}, fault.Wrap(err, fault.Invalid, streams.ReasonInvalidPayload, "payload of "+ev.ID+" is not a Stripe event JSON")
	}
	return Decode(ev.ID, ev.Type, ev.At.Unix(), ev.Livemode, env.Data.Object)
}

// apply applies sev in tx and reports it through rec: the store's change,
// the ledger's postings of the invoice, the outbox events and, after the
// commit, the metrics.
func (f *Family) apply(ctx context.Context, tx bun.Tx, ev eventtx.Event, sev Event, rec *eventtx.Record) error {
	out, err := f.store.Handle(ctx, tx, sev)
	if err != nil {
		return err
	}
	if err := f.post(ctx, tx, ev, sev, out, rec); err != nil {
		return err
	}
	if err := f.announce(ctx, tx, ev, sev, out, rec); err != nil {
		return err
	}
	record(sev, out, rec)
	return nil
}

// record turns the store's outcome into the event's stripe_events row.
// eventtx has no "ignored" for a routed event, so a subscription that is
// not paystream's is recorded with a note saying so.
func record(sev Event, out Outcome, rec *eventtx.Record) {
	note := out.Note
	if note == "" && out.SubscriptionID != "" {
		note = fmt.Sprintf("subscription %s: %s changes nothing (%s)", out.SubscriptionID, sev.Type, out.Decision)
	}
	switch out.Result {
	case ResultApplied:
		rec.Applied()
	case ResultDuplicate:
		rec.Duplicate(note)
	default:
		rec.Recorded(note)
	}
}
