package purchase

import (
	"testing"
	"time"

	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
)

// BenchmarkDecode is the handler's one decode of a delivered event (the
// runtime reads only the headers): the payload with data.object as the
// route's type, checked against the headers, and for a checkout its session.
func BenchmarkDecode(b *testing.B) {
	at := time.Unix(1700000000, 0)
	meta := stripefixture.Meta{EventID: "evt_bench000000000000000000", Created: at}
	checkout, err := stripefixture.CheckoutEvent(TypeCheckoutCompleted, meta, stripefixture.Checkout{AmountTotal: 2999,
		Metadata: stripefixture.PurchaseMetadata("user_1", "c0ffee00-0000-4000-8000-000000000001",
			"0e000000-0000-4000-8000-000000000001", 2999, "usd")})
	if err != nil {
		b.Fatal(err)
	}
	refund, err := stripefixture.ChargeRefundedEvent(meta, stripefixture.Charge{ChargeID: "ch_1", PaymentIntentID: "pi_1",
		Amount: 2999, Refunds: []stripefixture.Refund{{ID: "re_1", Amount: 1000}}})
	if err != nil {
		b.Fatal(err)
	}
	h := decoder(b)
	for _, bc := range []struct {
		name, typ string
		body      []byte
	}{{"checkout", TypeCheckoutCompleted, checkout}, {"refund", TypeChargeRefunded, refund}} {
		b.Run(bc.name, func(b *testing.B) {
			se := stripeevent.Event{ID: meta.EventID, Type: bc.typ, Created: at, Payload: bc.body}
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				ev, err := h.Decode(se)
				if err != nil {
					b.Fatal(err)
				}
				if cs, ok := ev.Object.(*checkoutObject); ok {
					if _, err := sessionOf(ev, cs); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
