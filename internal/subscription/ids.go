package subscription

import (
	"fmt"

	"github.com/paystream/paystream/internal/stripeevent"
)

// checkIDs refuses an event whose object id or references (subscription,
// customer, invoice, charge, payment intent, refund) are set but are not
// Stripe ids: they are stored and looked up by, and a value that is not an
// id (a NUL escape, a quote) can never apply. The object's own id must be
// there.
func (ev Event) checkIDs() error {
	type ref struct{ field, id string }
	var own string
	var refs []ref
	switch {
	case ev.Subscription != nil:
		own = ev.Subscription.ID
		refs = []ref{{"customer", ev.Subscription.StripeCustomerID}}
	case ev.Checkout != nil:
		own = ev.Checkout.ID
		refs = []ref{{"subscription", ev.Checkout.SubscriptionID}, {"customer", ev.Checkout.StripeCustomerID}}
	case ev.Invoice != nil:
		own = ev.Invoice.ID
		refs = []ref{{"subscription", ev.Invoice.SubscriptionID}, {"customer", ev.Invoice.StripeCustomerID},
			{"charge", ev.Invoice.ChargeID}, {"payment_intent", ev.Invoice.PaymentIntentID}}
	case ev.InvoicePayment != nil:
		own = ev.InvoicePayment.ID
		refs = []ref{{"invoice", ev.InvoicePayment.InvoiceID}, {"charge", ev.InvoicePayment.ChargeID},
			{"payment_intent", ev.InvoicePayment.PaymentIntentID}}
	case ev.Refund != nil:
		own = ev.Refund.ChargeID
		refs = []ref{{"payment_intent", ev.Refund.PaymentIntentID}, {"refund", ev.Refund.RefundID}, {"refund reason", ev.Refund.Reason}}
	case ev.Dispute != nil:
		own = ev.Dispute.ID
		refs = []ref{{"charge", ev.Dispute.ChargeID}, {"payment_intent", ev.Dispute.PaymentIntentID}}
	}
	if !stripeevent.ValidObjectID(own) {
		return fmt.Errorf("data.object id %q is not a Stripe id", own)
	}
	for _, r := range refs {
		if r.id != "" && !stripeevent.ValidObjectID(r.id) {
			return fmt.Errorf("%s %q is not a Stripe id", r.field, r.id)
		}
	}
	return nil
}
