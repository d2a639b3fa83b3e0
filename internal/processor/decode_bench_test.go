package processor

import (
	"testing"
	"time"

	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/streams"
)

// BenchmarkDecodeEvent is the runtime's decode of one delivered message into
// a stripeevent.Event: the headers the edge set. The 2.6 KB body is handed
// over unread (the handler decodes it once).
func BenchmarkDecodeEvent(b *testing.B) {
	body, err := stripefixture.CheckoutEvent("checkout.session.completed",
		stripefixture.Meta{EventID: "evt_bench000000000000000000"},
		stripefixture.Checkout{AmountTotal: 2999, Metadata: stripefixture.PurchaseMetadata(
			"user_1", "c0ffee00-0000-4000-8000-000000000001", "0e000000-0000-4000-8000-000000000001", 2999, "usd")})
	if err != nil {
		b.Fatal(err)
	}
	m, err := streams.Msg(stripeevent.Event{ID: "evt_bench000000000000000000", Type: "checkout.session.completed",
		APIVersion: "2023-10-16", Created: time.Now(), Endpoint: "default", ReceivedAt: time.Now(), Payload: body})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeEvent(m.Subject, m.Header, m.Data, 1); err != nil {
			b.Fatal(err)
		}
	}
}
