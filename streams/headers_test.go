package streams

import (
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/paystream/paystream/internal/stripeevent"
)

// Msg and DecodeHeaders are the two halves of the STRIPE_EVENTS header
// format: what one writes the other reads back unchanged.
func TestDecodeHeadersReadsWhatMsgWrote(t *testing.T) {
	want := stripeevent.Event{ID: "evt_1", Type: "checkout.session.completed", APIVersion: "2023-10-16", Livemode: true,
		Created: time.Unix(1700000000, 0).UTC(), Endpoint: "booking", ReceivedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		RequestID: "req_1", Source: "reconcile", Payload: []byte(`{}`)}
	m, err := Msg(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeHeaders(m.Subject, m.Header)
	if err != nil {
		t.Fatal(err)
	}
	if !got.ReceivedAt.Equal(want.ReceivedAt) {
		t.Errorf("ReceivedAt = %v, want %v", got.ReceivedAt, want.ReceivedAt)
	}
	if string(m.Data) != string(want.Payload) {
		t.Errorf("body = %s, want the payload %s", m.Data, want.Payload)
	}
	got.ReceivedAt, want.Payload = want.ReceivedAt, nil // the payload travels as the body
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DecodeHeaders = %+v\nwant %+v", got, want)
	}
}

func TestDecodeHeadersNamesTheBadHeader(t *testing.T) {
	m, err := Msg(stripeevent.Event{ID: "evt_1", Type: "charge.refunded", Created: time.Unix(1, 0), Endpoint: DefaultEndpoint})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, subject, header, value, want string
	}{
		{"no id", m.Subject, HeaderEventID, "", HeaderEventID},
		{"bad livemode", m.Subject, HeaderLivemode, "maybe", HeaderLivemode},
		{"bad created", m.Subject, HeaderCreated, "-5", HeaderCreated},
		{"subject of another type", "stripe.events.default.charge.captured", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := nats.Header(http.Header(m.Header).Clone())
			if tt.header != "" {
				h.Set(tt.header, tt.value)
			}
			_, err := DecodeHeaders(tt.subject, h)
			var he *HeaderError
			if !errors.As(err, &he) || he.Name != tt.want {
				t.Fatalf("DecodeHeaders = %v, want a HeaderError naming %q", err, tt.want)
			}
		})
	}
}
