package streams

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Msg and DecodeHeaders are the two halves of the STRIPE_EVENTS header
// format: what one writes the other reads back unchanged.
func TestDecodeHeadersReadsWhatMsgWrote(t *testing.T) {
	want := Event{ID: "evt_1", Type: "checkout.session.completed", APIVersion: "2023-10-16", Livemode: true,
		Created: 1700000000, Endpoint: "booking", ReceivedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		RequestID: "req_1", Source: "reconcile"}
	m, err := Msg(want, []byte(`{}`))
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
	got.ReceivedAt = want.ReceivedAt
	if got != want {
		t.Errorf("DecodeHeaders = %+v\nwant %+v", got, want)
	}
}

func TestDecodeHeadersNamesTheBadHeader(t *testing.T) {
	m, err := Msg(Event{ID: "evt_1", Type: "charge.refunded", Created: 1, Endpoint: DefaultEndpoint}, nil)
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
