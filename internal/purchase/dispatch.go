package purchase

// Stripe event types the handler applies.
const (
	TypeCheckoutCompleted = "checkout.session.completed"
)

// dispatch is the table of event types the handler applies. A new type is a
// new file with its route and one line here.
func (h *Handler) dispatch() map[string]route {
	return map[string]route{
		TypeCheckoutCompleted: h.checkoutRoute(""),
	}
}
