package testenv_test

import (
	"testing"
	"time"

	"github.com/paystream/paystream/internal/testenv"
)

func TestDeliveredReadsTheHeadersFromThePayload(t *testing.T) {
	body := []byte(`{"id":"evt_1","object":"event","type":"invoice.paid","api_version":"2025-03-31.basil","created":1700000000,"livemode":true,"data":{"object":{}}}`)
	ev := testenv.Delivered(t, body)
	created := time.Unix(1700000000, 0)
	if ev.ID != "evt_1" || ev.Type != "invoice.paid" || ev.APIVersion != "2025-03-31.basil" || !ev.Livemode ||
		!ev.Created.Equal(created) || !ev.ReceivedAt.Equal(created.Add(time.Second)) || ev.Endpoint != "default" ||
		ev.Subject != "stripe.events.default.invoice.paid" || ev.Deliveries != 1 || string(ev.Payload) != string(body) {
		t.Fatalf("%+v", ev)
	}
}
