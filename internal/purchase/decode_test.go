package purchase

import (
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/stripeevent"
)

func sessionEvent(object string) event {
	env := &envelope{ID: "evt_1", Type: TypeCheckoutCompleted}
	env.Data = &struct {
		Raw json.RawMessage `json:"object"`
	}{Raw: json.RawMessage(object)}
	return event{Event: stripeevent.Event{ID: "evt_1", Type: TypeCheckoutCompleted}, stripe: env}
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
			s, err := decodeSession(sessionEvent(tt.object))
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
	} {
		t.Run(name, func(t *testing.T) {
			_, err := decodeSession(sessionEvent(object))
			var f *fault.Error
			if !errors.As(err, &f) || f.Code != fault.Invalid {
				t.Errorf("err = %v, want an invalid-payload fault", err)
			}
		})
	}
}

// TestDecodeEventDecodesASessionOnce: a checkout.session.* body is decoded
// with its session in one pass, and reads the same as the two-pass way; a
// body whose object is not a session still gets decodeSession's reason.
func TestDecodeEventDecodesASessionOnce(t *testing.T) {
	const obj = `{"id":"cs_1","object":"checkout.session","payment_status":"paid","amount_total":2999,"currency":"usd",` +
		`"metadata":{"customerId":"user_1"},"payment_intent":{"id":"pi_1"},"customer":"cus_1"}`
	body := `{"id":"evt_1","object":"event","type":"checkout.session.completed","created":1700000000,"api_version":"2023-10-16","data":{"object":` + obj + `}}`
	hev := stripeevent.Event{ID: "evt_1", Type: TypeCheckoutCompleted, Payload: json.RawMessage(body)}
	ev, err := decodeEvent(hev)
	if err != nil {
		t.Fatal(err)
	}
	if ev.session == nil || ev.stripe.Data != nil {
		t.Fatalf("session %v, raw data %v: want the session decoded with the envelope", ev.session, ev.stripe.Data)
	}
	if ev.stripe.APIVersion != "2023-10-16" || ev.at.Unix() != 1700000000 {
		t.Errorf("envelope = %+v at %v", ev.stripe, ev.at)
	}
	once, err := decodeSession(ev)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := decodeSession(sessionEvent(obj))
	if err != nil || !reflect.DeepEqual(once, twice) {
		t.Errorf("one pass %+v, two passes %+v (%v)", once, twice, err)
	}
	if keys := objectKeys(ev); !reflect.DeepEqual(keys, []string{"cs_1", "pi_1"}) {
		t.Errorf("object keys = %v", keys)
	}

	bad := `{"id":"evt_1","type":"checkout.session.completed","created":1700000000,"data":{"object":{"id":"cs_1","metadata":{"customerId":7}}}}`
	ev, err = decodeEvent(stripeevent.Event{ID: "evt_1", Type: TypeCheckoutCompleted, Payload: json.RawMessage(bad)})
	if err != nil || ev.session != nil {
		t.Fatalf("bad session: event %+v, %v; want the envelope with the object kept raw", ev, err)
	}
	if _, err := decodeSession(ev); err == nil || !strings.Contains(err.Error(), "is not a checkout session") {
		t.Errorf("bad session: %v", err)
	}
}

// TestObjectKeysReadsReferencesAsIDsOrObjects: payment_intent and charge
// count as ids or expanded objects; one that does not parse is skipped, the
// object's own id still counts.
func TestObjectKeysReadsReferencesAsIDsOrObjects(t *testing.T) {
	for object, want := range map[string][]string{
		`{"id":"ch_1","payment_intent":"pi_1"}`:                        {"ch_1", "pi_1"},
		`{"id":"re_1","payment_intent":{"id":"pi_1"},"charge":"ch_1"}`: {"re_1", "pi_1", "ch_1"},
		`{"id":"du_1","payment_intent":null,"charge":{"id":"ch_1"}}`:   {"du_1", "ch_1"},
		`{"id":"du_1","payment_intent":42,"charge":["ch_1"]}`:          {"du_1"},
		`{"id":"pi_1"}`: {"pi_1"},
		`not json`:      nil,
	} {
		if got := objectKeys(sessionEvent(object)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: keys %v, want %v", object, got, want)
		}
	}
}
