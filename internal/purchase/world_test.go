package purchase_test

import (
	"testing"
	"time"

	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
)

// world is one purchase's Stripe objects: its session, payment intent,
// charge and customer, so several purchases can share one database.
type world struct {
	cat      catalog
	session  string
	pi       string
	charge   string
	customer string
	amount   int64
}

func newWorld(cat catalog, name string) world {
	return world{cat: cat, session: "cs_" + name, pi: "pi_" + name, charge: "ch_" + name, customer: "user_" + name, amount: 2999}
}

// checkout builds a checkout.session.* event of the world's session;
// paymentStatus "" keeps the fixture's default for typ.
func (w world) checkout(t *testing.T, typ, id string, at time.Time, paymentStatus string) stripeevent.Event {
	t.Helper()
	return checkout(t, typ, id, at, w.cat, w.session, w.amount, func(c *stripefixture.Checkout) {
		c.PaymentIntentID = w.pi
		c.Metadata["customerId"] = w.customer
		if paymentStatus != "" {
			c.PaymentStatus = paymentStatus
		}
		if typ == "checkout.session.expired" {
			c.Metadata = nil
		}
	})
}

// refund builds charge.refunded with the given refunds, newest first.
func (w world) refund(t *testing.T, id string, at time.Time, refunds ...stripefixture.Refund) stripeevent.Event {
	t.Helper()
	b, err := stripefixture.ChargeRefundedEvent(stripefixture.Meta{EventID: id, Created: at},
		stripefixture.Charge{ChargeID: w.charge, PaymentIntentID: w.pi, Amount: w.amount, Refunds: refunds})
	if err != nil {
		t.Fatal(err)
	}
	return toEvent(t, b)
}

func (w world) dispute(t *testing.T, typ, id string, at time.Time, status string) stripeevent.Event {
	t.Helper()
	b, err := stripefixture.DisputeEvent(typ, stripefixture.Meta{EventID: id, Created: at},
		stripefixture.Dispute{DisputeID: "du_" + w.session, ChargeID: w.charge, PaymentIntentID: w.pi, Amount: w.amount, Status: status})
	if err != nil {
		t.Fatal(err)
	}
	return toEvent(t, b)
}

func (w world) paymentIntent(t *testing.T, typ, id string, at time.Time) stripeevent.Event {
	t.Helper()
	b, err := stripefixture.PaymentIntentEvent(typ, stripefixture.Meta{EventID: id, Created: at},
		stripefixture.PaymentIntent{ID: w.pi, Amount: w.amount, ChargeID: w.charge})
	if err != nil {
		t.Fatal(err)
	}
	return toEvent(t, b)
}
