package streams

import (
	"maps"
	"net/textproto"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/paystream/paystream/internal/stripeevent"
)

// Msg fills its header map directly instead of through Header.Set; this is
// the Header.Set version it replaced, as the oracle: same (canonical) keys,
// same values.
func TestMsgHeadersAsHeaderSetWrites(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	for _, ev := range []stripeevent.Event{
		{ID: "evt_1", Type: "checkout.session.completed", APIVersion: "2023-10-16", Livemode: true,
			Created: time.Unix(1700000000, 0), Endpoint: "booking", ReceivedAt: at, RequestID: "req_1", Source: "reconcile"},
		{ID: "evt_2", Type: "charge.refunded", Created: time.Unix(1, 0), Endpoint: DefaultEndpoint, ReceivedAt: at},
	} {
		ev.Payload = []byte(`{}`)
		m, err := Msg(ev)
		if err != nil {
			t.Fatal(err)
		}
		want := nats.NewMsg(m.Subject)
		src := ev.Source
		if src == "" {
			src = "edge"
		}
		want.Header.Set(HeaderMsgID, ev.ID)
		want.Header.Set(HeaderEventID, ev.ID)
		want.Header.Set(HeaderEndpoint, ev.Endpoint)
		want.Header.Set(HeaderEventType, ev.Type)
		want.Header.Set(HeaderAPIVersion, ev.APIVersion)
		want.Header.Set(HeaderLivemode, strconv.FormatBool(ev.Livemode))
		want.Header.Set(HeaderCreated, strconv.FormatInt(ev.Created.Unix(), 10))
		want.Header.Set(HeaderReceivedAt, ev.ReceivedAt.UTC().Format(time.RFC3339Nano))
		if ev.RequestID != "" {
			want.Header.Set(HeaderRequestID, ev.RequestID)
		}
		want.Header.Set(HeaderSource, src)
		if !reflect.DeepEqual(m.Header, want.Header) {
			t.Errorf("Msg headers = %v\nwant %v", m.Header, want.Header)
		}
		for k := range maps.Keys(m.Header) {
			if c := textproto.CanonicalMIMEHeaderKey(k); c != k {
				t.Errorf("header key %q is not canonical (%q): Header.Get would miss it", k, c)
			}
		}

		// The values share one array: adding to one header must not touch
		// the next.
		m.Header.Add(HeaderMsgID, "extra")
		if got := m.Header.Get(HeaderEventID); got != ev.ID {
			t.Errorf("after Add to %s, %s = %q, want %q", HeaderMsgID, HeaderEventID, got, ev.ID)
		}
	}
}
