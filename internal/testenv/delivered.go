package testenv

import (
	"testing"
	"time"

	"github.com/paystream/paystream/internal/stripeevent"
)

// Delivered is payload as the processor's runtime hands it to a family:
// the event its headers describe (id, type, API version, livemode and
// created read from the payload), received a second after it was created
// on the default endpoint, first delivery. A payload that is not a Stripe
// event fails the test.
func Delivered(tb testing.TB, payload []byte) stripeevent.Event {
	tb.Helper()
	ev, err := stripeevent.Parse(payload)
	if err != nil {
		tb.Fatalf("not a Stripe event: %v", err)
	}
	ev.Endpoint, ev.ReceivedAt = "default", ev.Created.Add(time.Second)
	ev.Subject, ev.Deliveries = "stripe.events.default."+ev.Type, 1
	return ev
}
