package stripefixture

import (
	"time"

	"github.com/paystream/paystream/internal/stripeevent"
)

// Delivered is payload as the processor's runtime hands it to a family:
// the event its headers describe (id, type, API version, livemode and
// created read from the payload), received a second after it was created
// on the default endpoint, first delivery.
func Delivered(payload []byte) (stripeevent.Event, error) {
	ev, err := stripeevent.Parse(payload)
	if err != nil {
		return stripeevent.Event{}, err
	}
	ev.Endpoint, ev.ReceivedAt = "default", ev.Created.Add(time.Second)
	ev.Subject, ev.Deliveries = "stripe.events.default."+ev.Type, 1
	return ev, nil
}
