package purchase

import (
	"context"
	"fmt"

	"github.com/stripe/stripe-go/v76"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/eventtx"
)

// Payment intent event types: recorded and linked, never a state change.
const (
	TypePaymentIntentSucceeded = "payment_intent.succeeded"
	TypePaymentIntentFailed    = "payment_intent.payment_failed"
)

// paymentIntentRoute records a payment_intent.* event and links it to the
// purchase of the intent when one exists: the stripe_events row gets the
// purchase id and the purchase learns its charge id (used to match refunds
// and disputes that carry no payment intent). It never creates a purchase
// (there is no checkout metadata) and never changes a status: a failed
// attempt may be followed by a successful one on the same intent, and the
// checkout.session.* events are the authority on the outcome.
func (f *family) paymentIntentRoute(ctx context.Context, tx bun.Tx, ev eventtx.Event, pi *stripe.PaymentIntent, rec *eventtx.Record) error {
	if err := checkObject(ev, pi.ID, pi.Object, objectPaymentIntent); err != nil {
		return err
	}
	if pi.LatestCharge != nil {
		if err := checkRefs(ev, "latest_charge", pi.LatestCharge.ID); err != nil {
			return err
		}
	}
	p, err := lockByPayment(ctx, tx, pi.ID, "")
	if err != nil {
		return err
	}
	if p == nil {
		rec.Recorded(fmt.Sprintf("no purchase for payment intent %s", pi.ID))
		return nil
	}
	if p.StripeChargeID != nil || pi.LatestCharge == nil || pi.LatestCharge.ID == "" {
		rec.Link(p.ID)
		rec.Recorded(fmt.Sprintf("linked to purchase %s (%s)", p.ID, pi.Status))
		return nil
	}
	p.StripeChargeID = &pi.LatestCharge.ID
	p.UpdatedAt = f.cfg.Now().UTC()
	if err := updatePurchase(ctx, tx, p); err != nil {
		return err
	}
	rec.Link(p.ID)
	rec.Applied()
	return nil
}
