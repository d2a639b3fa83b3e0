package purchase

// Stripe event types the handler applies.
const (
	TypeCheckoutCompleted      = "checkout.session.completed"
	TypeCheckoutAsyncSucceeded = "checkout.session.async_payment_succeeded"
	TypeCheckoutAsyncFailed    = "checkout.session.async_payment_failed"
	TypeCheckoutExpired        = "checkout.session.expired"
)

// dispatch is the table of event types the handler applies. A new type is a
// new file with its route and one line here.
func (h *Handler) dispatch() map[string]route {
	return map[string]route{
		TypeCheckoutCompleted:      h.checkoutRoute(""),
		TypeCheckoutAsyncSucceeded: h.checkoutRoute(TriggerPaid),
		TypeCheckoutAsyncFailed:    h.checkoutRoute(TriggerPaymentFailed),
		TypeCheckoutExpired:        h.checkoutRoute(TriggerExpired),
		TypeChargeRefunded:         h.refundRoute,
		TypeDisputeCreated:         h.disputeRoute(false),
		TypeDisputeClosed:          h.disputeRoute(true),
		TypePaymentIntentSucceeded: h.paymentIntentRoute,
		TypePaymentIntentFailed:    h.paymentIntentRoute,
	}
}
