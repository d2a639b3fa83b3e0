package purchase

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"log/slog"
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/stripeevent"
)

// noDB is a database the decode tests never reach: decoding comes before
// any transaction.
type noDB struct{}

func (noDB) Connect(context.Context) (driver.Conn, error) {
	return nil, errors.New("decode tests use no database")
}
func (noDB) Driver() driver.Driver { return nil }

// decoder is the purchase handler's lifecycle, for its Decode.
func decoder(t testing.TB) *Handler {
	t.Helper()
	h, err := NewHandler(bun.NewDB(sql.OpenDB(noDB{}), pgdialect.New()), Config{}, NewMetrics(prometheus.NewRegistry()),
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// objectEvent is an event of typ whose data.object is object, delivered
// with headers that agree with it.
func objectEvent(typ, object string) stripeevent.Event {
	return stripeevent.Event{ID: "evt_1", Type: typ, Payload: []byte(`{"id":"evt_1","object":"event","type":"` + typ +
		`","created":1700000000,"api_version":"2023-10-16","data":{"object":` + object + `}}`)}
}

// decodeSession decodes a checkout.session.completed whose data.object is
// object, as the route gets it, and reads its session.
func decodeSession(t *testing.T, object string) (session, error) {
	t.Helper()
	ev, err := decoder(t).Decode(objectEvent(TypeCheckoutCompleted, object))
	if err != nil {
		return session{}, err
	}
	return sessionOf(ev, ev.Object.(*checkoutObject))
}

// TestDecodeSessionReadsIDsExpandedOrNot: payment_intent and customer come as
// ids, as expanded objects, as null or not at all; every other field the
// handler reads is taken as it is.
func TestDecodeSessionReadsIDsExpandedOrNot(t *testing.T) {
	const common = `"id":"cs_1","object":"checkout.session","payment_status":"paid","amount_total":2999,` +
		`"currency":"usd","livemode":true,"metadata":{"customerId":"user_1","note":"x"},"unknown":{"deep":[1,{"a":null}]}`
	tests := []struct {
		name, object string
		pi, cus      string
	}{
		{"ids", `{` + common + `,"payment_intent":"pi_1","customer":"cus_1"}`, "pi_1", "cus_1"},
		{"expanded", `{` + common + `,"payment_intent":{"id":"pi_2","object":"payment_intent","amount":2999},"customer":{"id":"cus_2","email":"a@b.c"}}`, "pi_2", "cus_2"},
		{"null", `{` + common + `,"payment_intent":null,"customer":null}`, "", ""},
		{"absent", `{` + common + `}`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := decodeSession(t, tt.object)
			if err != nil {
				t.Fatal(err)
			}
			want := session{ID: "cs_1", PaymentStatus: "paid", PaymentIntentID: tt.pi, StripeCustomerID: tt.cus,
				AmountTotal: 2999, Currency: "usd", Livemode: true, Metadata: map[string]string{"customerId": "user_1", "note": "x"}}
			if !maps.Equal(s.Metadata, want.Metadata) {
				t.Errorf("metadata = %v", s.Metadata)
			}
			s.Metadata, want.Metadata = nil, nil
			if !reflect.DeepEqual(s, want) {
				t.Errorf("session = %+v, want %+v", s, want)
			}
		})
	}
}

// TestDecodeSessionRejectsWhatIsNotASession: each is invalid (dead-lettered
// at once), never a half-read session.
func TestDecodeSessionRejectsWhatIsNotASession(t *testing.T) {
	for name, object := range map[string]string{
		"a string":            `"cs_1"`,
		"no id":               `{"object":"checkout.session","payment_status":"paid"}`,
		"another object":      `{"id":"pi_1","object":"payment_intent"}`,
		"metadata not text":   `{"id":"cs_1","metadata":{"customerId":42}}`,
		"amount not a number": `{"id":"cs_1","amount_total":"2999"}`,
		"payment intent bad":  `{"id":"cs_1","payment_intent":42}`,
		"customer bad":        `{"id":"cs_1","customer":["cus_1"]}`,
		"not JSON":            `{"id":"cs_1",`,
		"null":                `null`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := decodeSession(t, object)
			var f *fault.Error
			if !errors.As(err, &f) || f.Code != fault.Invalid || f.Reason != "invalid_payload" {
				t.Errorf("err = %v, want an invalid-payload fault", err)
			}
		})
	}
}

// TestDecodeReadsTheSessionWithTheEvent: a checkout.session.* body is
// decoded with its session in one pass; the payload fills what the headers
// left out (api_version, created); a body whose object is not a session is
// refused with the reason why.
func TestDecodeReadsTheSessionWithTheEvent(t *testing.T) {
	const obj = `{"id":"cs_1","object":"checkout.session","payment_status":"paid","amount_total":2999,"currency":"usd",` +
		`"metadata":{"customerId":"user_1"},"payment_intent":{"id":"pi_1"},"customer":"cus_1"}`
	ev, err := decoder(t).Decode(objectEvent(TypeCheckoutCompleted, obj))
	if err != nil {
		t.Fatal(err)
	}
	cs, ok := ev.Object.(*checkoutObject)
	if !ok {
		t.Fatalf("object = %T, want the session decoded with the envelope", ev.Object)
	}
	if ev.APIVersion != "2023-10-16" || ev.At.Unix() != 1700000000 || ev.Endpoint != "default" {
		t.Errorf("event = %+v at %v", ev.Event, ev.At)
	}
	s, err := sessionOf(ev, cs)
	want := session{ID: "cs_1", PaymentStatus: "paid", AmountTotal: 2999, Currency: "usd", PaymentIntentID: "pi_1",
		StripeCustomerID: "cus_1", Metadata: map[string]string{"customerId": "user_1"}}
	if err != nil || !reflect.DeepEqual(s, want) {
		t.Errorf("session = %+v, %v; want %+v", s, err, want)
	}
	if keys := objectKeys(&ev); !reflect.DeepEqual(keys, []string{"cs_1", "pi_1"}) {
		t.Errorf("object keys = %v", keys)
	}

	_, err = decoder(t).Decode(objectEvent(TypeCheckoutCompleted, `{"id":"cs_1","metadata":{"customerId":7}}`))
	if err == nil || fault.ReasonOf(err) != "invalid_payload" || !strings.Contains(err.Error(), "is not a checkout.session") {
		t.Errorf("bad session: %v", err)
	}
}

// TestObjectKeysReadsReferencesAsIDsOrObjects: payment_intent and charge
// count as ids or expanded objects, a null one not at all; the object's own
// id always counts. A reference that does not parse makes the payload
// invalid: the event is refused at decode and never reaches a batch.
func TestObjectKeysReadsReferencesAsIDsOrObjects(t *testing.T) {
	h := decoder(t)
	for _, tt := range []struct {
		typ, object string
		want        []string // nil: refused at decode
	}{
		{TypeChargeRefunded, `{"id":"ch_1","payment_intent":"pi_1"}`, []string{"ch_1", "pi_1"}},
		{TypeChargeRefunded, `{"id":"ch_1","payment_intent":{"id":"pi_1"}}`, []string{"ch_1", "pi_1"}},
		{TypeDisputeCreated, `{"id":"du_1","payment_intent":{"id":"pi_1"},"charge":"ch_1"}`, []string{"du_1", "pi_1", "ch_1"}},
		{TypeDisputeCreated, `{"id":"du_1","payment_intent":null,"charge":{"id":"ch_1"}}`, []string{"du_1", "ch_1"}},
		{TypeDisputeClosed, `{"id":"du_1","payment_intent":42,"charge":["ch_1"]}`, nil},
		{TypePaymentIntentSucceeded, `{"id":"pi_1"}`, []string{"pi_1"}},
		{TypeCheckoutCompleted, `{"id":"cs_1","payment_intent":"pi_1"}`, []string{"cs_1", "pi_1"}},
		{TypeCheckoutExpired, `{"id":"cs_1","payment_intent":null}`, []string{"cs_1"}},
		{TypeChargeRefunded, `"ch_1"`, nil}, // stripe.Charge would take a bare id; a data.object is never one
		{TypeChargeRefunded, `not json`, nil},
	} {
		ev, err := h.Decode(objectEvent(tt.typ, tt.object))
		if tt.want == nil {
			if fault.ReasonOf(err) != "invalid_payload" {
				t.Errorf("%s %s: %v, want invalid_payload", tt.typ, tt.object, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %s: %v", tt.typ, tt.object, err)
			continue
		}
		if got := objectKeys(&ev); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s %s: keys %v, want %v", tt.typ, tt.object, got, tt.want)
		}
	}
}

// TestDecodeRefusesWhatIsNotItsEvent: the payload is checked against the
// headers as it is decoded, for every type, routed or not.
func TestDecodeRefusesWhatIsNotItsEvent(t *testing.T) {
	h := decoder(t)
	for _, typ := range append(HandledTypes(), "customer.created") {
		good := objectEvent(typ, `{"id":"x_1"}`)
		if _, err := h.Decode(good); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
		for name, ev := range map[string]stripeevent.Event{
			"other id":   {ID: "evt_2", Type: typ, Payload: good.Payload},
			"other type": {ID: "evt_1", Type: "charge.captured", Payload: good.Payload},
			"not json":   {ID: "evt_1", Type: typ, Payload: []byte("<html>")},
		} {
			if _, err := h.Decode(ev); fault.CodeOf(err) != fault.Invalid || fault.ReasonOf(err) != "invalid_payload" {
				t.Errorf("%s, %s: %v, want invalid_payload", typ, name, err)
			}
		}
	}
	if _, err := h.Decode(stripeevent.Event{ID: "evt_1", Type: TypeChargeRefunded,
		Payload: []byte(`{"id":"evt_1","type":"charge.refunded","created":1}`)}); fault.ReasonOf(err) != "invalid_payload" ||
		!strings.Contains(err.Error(), "no data.object") {
		t.Errorf("no data.object: %v", err)
	}
}
