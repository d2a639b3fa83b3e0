// Package purchase applies Stripe events to purchases in Postgres: the
// purchase family of the event route table (package eventtx). Each handled
// event type has a route in its own file (checkout, refund, dispute,
// payment intent); in the event's transaction — its own, or by default its
// batch's — a route changes the purchase, the content access row and the
// outbox, and eventtx adds the stripe_events row. A batch's new paid
// checkouts take the set-based path (setbased.go).
package purchase

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/eventtx"
	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/streams"
)

// Config tunes the purchase family.
type Config struct {
	// Access is the access rule's policy (partial refunds keep access
	// unless Access.RevokeOnPartialRefund).
	Access AccessPolicy
	// Now is the clock for processed_at, updated_at and outbox times;
	// default time.Now. Agreement windows are judged at the Stripe event's
	// own time, never at Now, so replays split the same way.
	Now func() time.Time
	// Subscriptions, when set, gets the events of the shared types that are
	// not a purchase's (subscriptions.go); nil leaves them to the purchase
	// routes.
	Subscriptions Subscriptions
}

// family is the purchase family: its routes are its methods.
type family struct {
	cfg Config
	m   *Metrics
	log *slog.Logger
}

// NewFamily returns the purchase family for eventtx.New, beside the other
// families of the processor.
func NewFamily(cfg Config, m *Metrics, log *slog.Logger) (eventtx.Family, error) {
	f, err := newFamily(cfg, m, log)
	if err != nil {
		return eventtx.Family{}, err
	}
	return f.family(), nil
}

func newFamily(cfg Config, m *Metrics, log *slog.Logger) (*family, error) {
	if m == nil || log == nil {
		return nil, errors.New("purchase: metrics and logger are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &family{cfg: cfg, m: m, log: log}, nil
}

// family is f's share of the route table.
func (f *family) family() eventtx.Family {
	return eventtx.Family{Name: "purchase", Routes: f.routes(), Set: setBased{f}}
}

// Stripe event types of checkouts.
const (
	TypeCheckoutCompleted      = "checkout.session.completed"
	TypeCheckoutAsyncSucceeded = "checkout.session.async_payment_succeeded"
	TypeCheckoutAsyncFailed    = "checkout.session.async_payment_failed"
	TypeCheckoutExpired        = "checkout.session.expired"
)

// routes is the family's part of the route table. A new type is a new file
// with its route and one line here.
func (f *family) routes() map[string]eventtx.Route {
	return map[string]eventtx.Route{
		TypeCheckoutCompleted:      eventtx.On(objectCheckoutSession, f.subscriptionCheckout(f.checkoutRoute(""))),
		TypeCheckoutAsyncSucceeded: eventtx.On(objectCheckoutSession, f.subscriptionCheckout(f.checkoutRoute(TriggerPaid))),
		TypeCheckoutAsyncFailed:    eventtx.On(objectCheckoutSession, f.subscriptionCheckout(f.checkoutRoute(TriggerPaymentFailed))),
		TypeCheckoutExpired:        eventtx.On(objectCheckoutSession, f.subscriptionCheckout(f.checkoutRoute(TriggerExpired))),
		TypeChargeRefunded:         eventtx.On(objectCharge, invoiceCharge(f, f.refundRoute)),
		TypeDisputeCreated:         eventtx.On(objectDispute, invoiceCharge(f, f.disputeRoute(false))),
		TypeDisputeClosed:          eventtx.On(objectDispute, invoiceCharge(f, f.disputeRoute(true))),
		TypePaymentIntentSucceeded: eventtx.On(objectPaymentIntent, f.paymentIntentRoute),
		TypePaymentIntentFailed:    eventtx.On(objectPaymentIntent, f.paymentIntentRoute),
	}
}

// HandledTypes lists, sorted, the Stripe event types the purchase family
// applies, for tools that need the list but no database (reconcile's event
// type filter, `paystream send`, docs).
func HandledTypes() []string { return eventtx.TypesOf((&family{}).routes()) }

// Handler applies Stripe events to purchases: the purchase family alone on
// the eventtx lifecycle. It implements handling.BatchHandler.
type Handler struct {
	*eventtx.Handler

	db  *bun.DB
	fam eventtx.Family
	cfg eventtx.Config
	log *slog.Logger
}

// NewHandler returns the purchase handler.
func NewHandler(bdb *bun.DB, cfg Config, m *Metrics, log *slog.Logger) (*Handler, error) {
	if bdb == nil || log == nil {
		return nil, errors.New("purchase handler: db, metrics and logger are required")
	}
	log = log.With("component", "purchase")
	f, err := newFamily(cfg, m, log)
	if err != nil {
		return nil, fmt.Errorf("purchase handler: %w", err)
	}
	h := &Handler{db: bdb, fam: f.family(), cfg: eventtx.Config{Now: f.cfg.Now, Ledger: m.ledger}, log: log}
	if h.Handler, err = eventtx.New(bdb, h.cfg, log, h.fam); err != nil {
		return nil, err
	}
	return h, nil
}

// Stripe object names of data.object, as the routes expect them.
const (
	objectCheckoutSession = "checkout.session"
	objectCharge          = "charge"
	objectDispute         = "dispute"
	objectPaymentIntent   = "payment_intent"
)

// checkObject refuses a data.object whose id is not a Stripe id or whose
// object name, when present, is not want: the event's type promised another
// object.
func checkObject(ev eventtx.Event, id, object, want string) error {
	if !stripeevent.ValidObjectID(id) || (object != "" && object != want) {
		return fault.New(fault.Invalid, streams.ReasonInvalidPayload, "data.object of %s is %q %q, not a %s", ev.ID, object, id, want)
	}
	return nil
}

// checkRefs refuses references to other Stripe objects (payment intent,
// charge, customer, refund; field name, then id, in pairs) that are set but
// are not Stripe ids: they are stored and queried by, so a value that is
// not an id can never apply.
func checkRefs(ev eventtx.Event, fieldIDs ...string) error {
	for i := 0; i+1 < len(fieldIDs); i += 2 {
		if id := fieldIDs[i+1]; id != "" && !stripeevent.ValidObjectID(id) {
			return fault.New(fault.Invalid, streams.ReasonInvalidPayload, "%s of %s is %q, not a Stripe id", fieldIDs[i], ev.ID, id)
		}
	}
	return nil
}
