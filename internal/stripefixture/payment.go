package stripefixture

import "strings"

// Payment is one payment as an operator describes it (`paystream send`):
// the Stripe ids every event about it shares, the purchase it is for, and
// the details of the event types that need them.
type Payment struct {
	SessionID       string // cs_test_…; generated when empty
	PaymentIntentID string // pi_…; generated when empty (none for an expired session)
	ChargeID        string // ch_…; generated when empty

	CustomerID, ContentID, OrganizationID string // the checkout's purchase metadata
	Amount                                int64  // minor units
	Currency                              string // ISO code, lower case

	PaymentStatus string // checkout: paid, unpaid, no_payment_required; from the event type when empty
	RefundAmount  int64  // charge.refunded: the refund; Amount when 0
	DisputeStatus string // charge.dispute.*: needs_response when empty, lost for .closed
}

// IDs are the Stripe ids an event built by PaymentEvent names: a checkout
// event names no charge, the other events no session.
type IDs struct{ Event, Session, PaymentIntent, Charge string }

// PaymentEvent builds an event of type typ (checkout.session.*,
// charge.refunded, charge.dispute.*, payment_intent.*) about p, generating
// the event id and the ids p leaves empty, and returns the ids it names.
func PaymentEvent(typ string, m Meta, p Payment) ([]byte, IDs, error) {
	if m.EventID == "" {
		m.EventID = NewID("evt_", 24)
	}
	ids := IDs{Event: m.EventID, Session: p.SessionID, PaymentIntent: p.PaymentIntentID, Charge: p.ChargeID}
	orDefault(&ids.Session, NewID("cs_test_", 58))
	orDefault(&ids.PaymentIntent, NewID("pi_", 24))
	orDefault(&ids.Charge, NewID("ch_", 24))
	var (
		body []byte
		err  error
	)
	switch {
	case strings.HasPrefix(typ, "checkout.session."):
		ids.Charge = ""
		if typ == "checkout.session.expired" && p.PaymentIntentID == "" {
			ids.PaymentIntent = "" // an abandoned session never made a payment intent
		}
		body, err = CheckoutEvent(typ, m, Checkout{
			SessionID: ids.Session, PaymentIntentID: ids.PaymentIntent, AmountTotal: p.Amount, Currency: p.Currency,
			PaymentStatus: p.PaymentStatus,
			Metadata:      PurchaseMetadata(p.CustomerID, p.ContentID, p.OrganizationID, p.Amount, p.Currency),
		})
	case typ == "charge.refunded":
		ids.Session = ""
		refund := p.RefundAmount
		if refund == 0 {
			refund = p.Amount
		}
		body, err = ChargeRefundedEvent(m, Charge{
			ChargeID: ids.Charge, PaymentIntentID: ids.PaymentIntent, Amount: p.Amount, Currency: p.Currency,
			Refunds: []Refund{{Amount: refund}},
		})
	case strings.HasPrefix(typ, "charge.dispute."):
		ids.Session = ""
		status := p.DisputeStatus
		if status == "" && typ == "charge.dispute.closed" {
			status = "lost"
		}
		body, err = DisputeEvent(typ, m, Dispute{
			ChargeID: ids.Charge, PaymentIntentID: ids.PaymentIntent, Amount: p.Amount, Currency: p.Currency, Status: status,
		})
	default: // payment_intent.*
		ids.Session = ""
		body, err = PaymentIntentEvent(typ, m, PaymentIntent{
			ID: ids.PaymentIntent, Amount: p.Amount, Currency: p.Currency, ChargeID: ids.Charge,
		})
	}
	return body, ids, err
}
