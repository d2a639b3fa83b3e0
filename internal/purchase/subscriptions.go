package purchase

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/eventtx"
	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/model"
)

// Subscriptions is the subscription family's share of the event types it
// reads with purchases. eventtx routes one event type to one family, so the
// purchase routes of those types hand it what is not a purchase's: a
// checkout session in subscription mode, and a refund or dispute of a charge
// no purchase has (an invoice's). internal/subscription implements it.
type Subscriptions interface {
	// Checkout applies checkout.session.completed of a session in
	// subscription mode, inside the event's transaction.
	Checkout(ctx context.Context, tx bun.Tx, ev eventtx.Event, rec *eventtx.Record) error
	// Charge applies charge.refunded or charge.dispute.* of a charge that
	// pays no purchase. handled is false when it pays no subscription
	// invoice either: the purchase route's answer stands (retry until the
	// purchase or the invoice is there).
	Charge(ctx context.Context, tx bun.Tx, ev eventtx.Event, rec *eventtx.Record) (handled bool, err error)
}

// modeSubscription is a Checkout Session's mode when it sells a
// subscription.
const modeSubscription = "subscription"

// subscriptionCheckout hands a checkout session in subscription mode to the
// subscription family; every other session goes to route. Without a
// subscription family, route gets them all.
func (f *family) subscriptionCheckout(route func(context.Context, bun.Tx, eventtx.Event, *checkoutObject, *eventtx.Record) error) func(context.Context, bun.Tx, eventtx.Event, *checkoutObject, *eventtx.Record) error {
	return func(ctx context.Context, tx bun.Tx, ev eventtx.Event, cs *checkoutObject, rec *eventtx.Record) error {
		subs := f.cfg.Subscriptions
		if subs == nil || cs.Mode != modeSubscription {
			return route(ctx, tx, ev, cs, rec)
		}
		if err := checkObject(ev, cs.ID, cs.Object, objectCheckoutSession); err != nil {
			return err
		}
		status := ""
		switch ev.Type {
		case TypeCheckoutCompleted:
			if err := subs.Checkout(ctx, tx, ev, rec); err != nil {
				return err
			}
			status = model.CheckoutComplete
		case TypeCheckoutExpired:
			rec.Recorded("subscription checkout session " + cs.ID + " expired; it sold nothing")
			status = model.CheckoutExpired
		default:
			// A subscription's payments are its invoices'; the session's
			// async outcome changes nothing the subscription events do not.
			rec.Recorded("subscription checkout session " + cs.ID + ": " + ev.Type + " is followed by the subscription's own events")
		}
		return MarkCheckoutSession(ctx, tx, cs.ID, status, ev.At)
	}
}

// invoiceCharge asks the subscription family about a refund or dispute
// whose charge pays no purchase, before route's answer (retry until the
// purchase exists) stands. The purchase route looks the purchase up first,
// so a purchase's refund costs nothing more.
func invoiceCharge[T any](f *family, route func(context.Context, bun.Tx, eventtx.Event, *T, *eventtx.Record) error) func(context.Context, bun.Tx, eventtx.Event, *T, *eventtx.Record) error {
	return func(ctx context.Context, tx bun.Tx, ev eventtx.Event, obj *T, rec *eventtx.Record) error {
		err := route(ctx, tx, ev, obj, rec)
		subs := f.cfg.Subscriptions
		if subs == nil || fault.CodeOf(err) != fault.Pending || fault.ReasonOf(err) != reasonNoPurchase {
			return err
		}
		handled, serr := subs.Charge(ctx, tx, ev, rec)
		if serr != nil || handled {
			return serr
		}
		return err
	}
}

// reasonNoPurchase is lockPaid's reason for a charge that pays no purchase
// (yet): nothing was written, and the charge may be an invoice's.
const reasonNoPurchase = "purchase_not_found"
