package stripeevent

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// object is a data.object type with a reference that decodes itself, as the
// domain's types have (an id, or the expanded object).
type object struct {
	ID  string `json:"id"`
	Ref ref    `json:"ref"`
	N   int    `json:"n"`
}

type ref string

func (r *ref) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*r = ref(s)
	return nil
}

// TestDecode: the payload is read with data.object in one pass, and refused
// when it is not the event the headers describe, whatever is wrong with it.
func TestDecode(t *testing.T) {
	ev := Event{ID: "evt_1", Type: "charge.refunded"}
	tests := []struct {
		name string
		body string
		want error // nil: decodes
	}{
		{"event", `{"id":"evt_1","object":"event","type":"charge.refunded","created":1700000000,"api_version":"2023-10-16","data":{"object":{"id":"ch_1","ref":"pi_1","n":2}}}`, nil},
		{"no data", `{"id":"evt_1","type":"charge.refunded"}`, nil},
		{"null object", `{"id":"evt_1","type":"charge.refunded","data":{"object":null}}`, nil},
		// What the runtime's body check refused before the domain decoded.
		{"not json", `<html>`, ErrNotJSON},
		{"json array", `[1,2]`, ErrNotJSON},
		{"other event in body", `{"id":"evt_2","type":"charge.refunded"}`, ErrOtherEvent},
		{"other type in body", `{"id":"evt_1","type":"charge.dispute.created"}`, ErrOtherEvent},
		{"null", `null`, ErrOtherEvent},
		{"truncated", `{"id":"evt_1","type":"charge.refunded","data":{"object":{"id":"ch_1"`, ErrNotJSON},
		{"id of the wrong type", `{"id":1,"type":"charge.refunded"}`, ErrNotJSON},
		{"data of the wrong type", `{"id":"evt_1","type":"charge.refunded","data":"x"}`, ErrNotJSON},
		{"object of the wrong type", `{"id":"evt_1","type":"charge.refunded","data":{"object":"ch_1"}}`, ErrObject},
		{"object field of the wrong type", `{"id":"evt_1","type":"charge.refunded","data":{"object":{"id":"ch_1","n":"2"}}}`, ErrObject},
		{"reference its decoder refuses", `{"id":"evt_1","data":{"object":{"id":"ch_1","ref":42}},"type":"charge.refunded"}`, ErrObject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev.Payload = json.RawMessage(tt.body)
			b, err := Decode[object](ev)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("Decode = %v, want %v", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.name == "event" {
				if b.Object == nil || *b.Object != (object{ID: "ch_1", Ref: "pi_1", N: 2}) ||
					b.Created != 1700000000 || b.APIVersion != "2023-10-16" {
					t.Errorf("body = %+v, object %+v", b, b.Object)
				}
			} else if b.Object != nil {
				t.Errorf("object = %+v, want none", b.Object)
			}
		})
	}
}

// expandable decodes itself from an id or an object, as stripe-go's types do.
type expandable struct {
	ID string `json:"id"`
}

func (e *expandable) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &e.ID)
	}
	type plain expandable
	return json.Unmarshal(b, (*plain)(e))
}

// TestDecodeSelfDecodingObject: a type that would take a bare id still gets
// only a JSON object as data.object; its own errors are the object's.
func TestDecodeSelfDecodingObject(t *testing.T) {
	for _, tt := range []struct {
		object string
		want   error
		id     string
	}{
		{`{"id":"ch_1"}`, nil, "ch_1"},
		{`null`, nil, ""},
		{`"ch_1"`, ErrObject, ""},
		{`[{"id":"ch_1"}]`, ErrObject, ""},
		{`{"id":7}`, ErrObject, ""},
	} {
		ev := Event{ID: "evt_1", Type: "charge.refunded",
			Payload: json.RawMessage(`{"id":"evt_1","type":"charge.refunded","data":{"object":` + tt.object + `}}`)}
		b, err := Decode[expandable](ev)
		if !errors.Is(err, tt.want) || (err == nil && tt.want != nil) {
			t.Errorf("%s: %v, want %v", tt.object, err, tt.want)
			continue
		}
		if tt.want == nil && ((b.Object == nil) != (tt.id == "") || (b.Object != nil && b.Object.ID != tt.id)) {
			t.Errorf("%s: object %+v, want id %q", tt.object, b.Object, tt.id)
		}
	}
}

// TestDecodeOpaque: an object that is not read may have any shape.
func TestDecodeOpaque(t *testing.T) {
	for _, obj := range []string{`{"id":"cus_1","deep":[1,{"a":null}]}`, `"x"`, `[1]`, `null`} {
		ev := Event{ID: "evt_1", Type: "customer.created",
			Payload: json.RawMessage(`{"id":"evt_1","type":"customer.created","data":{"object":` + obj + `}}`)}
		if _, err := Decode[Opaque](ev); err != nil {
			t.Errorf("%s: %v", obj, err)
		}
	}
}

// TestParse: the edge's view of a body, and the Event it publishes.
func TestParse(t *testing.T) {
	body := []byte(`{"id":"evt_1","object":"event","type":"charge.refunded","api_version":"2024-06-20","livemode":true,"created":1700000000,"data":{}}`)
	ev, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	want := Event{ID: "evt_1", Type: "charge.refunded", APIVersion: "2024-06-20", Livemode: true,
		Created: time.Unix(1700000000, 0).UTC(), Payload: body}
	if ev.ID != want.ID || ev.Type != want.Type || ev.APIVersion != want.APIVersion || ev.Livemode != want.Livemode ||
		!ev.Created.Equal(want.Created) || ev.Created.Location() != time.UTC || string(ev.Payload) != string(body) {
		t.Errorf("Parse = %+v, want %+v", ev, want)
	}
	if ev, err := Parse([]byte(`{"id":"evt_1","object":"event","type":"a.b"}`)); err != nil || !ev.Created.IsZero() {
		t.Errorf("no created: %+v, %v; want the zero time", ev, err)
	}
	for _, bad := range []string{`{"id":"evt_1","object":"charge"}`, `{"id":"evt_1"}`, `null`} {
		if _, err := Parse([]byte(bad)); !errors.Is(err, ErrNotEvent) {
			t.Errorf("%s: %v, want ErrNotEvent", bad, err)
		}
	}
	if _, err := Parse([]byte(`{"id":`)); err == nil || errors.Is(err, ErrNotEvent) {
		t.Errorf("truncated body: %v, want a syntax error", err)
	}
}

func TestValidObjectID(t *testing.T) {
	for id, ok := range map[string]bool{
		"cs_test_a1B2c3": true, "pi_3NabcDEF": true, "cus_1": true, "acct_1Nx": true, "x": true,
		"": false, "cs_\x00": false, "cs test": false, "cs-1": false, "cs_é": false, "cs_1'": false,
		strings.Repeat("a", 255): true, strings.Repeat("a", 256): false,
	} {
		if got := ValidObjectID(id); got != ok {
			t.Errorf("ValidObjectID(%q) = %v, want %v", id, got, ok)
		}
	}
}

// TestDecodeAccount: the top-level account of a Connect event is read in
// the same pass, on every path of Decode; a platform event has none.
func TestDecodeAccount(t *testing.T) {
	connect := Event{ID: "evt_1", Type: "account.updated",
		Payload: json.RawMessage(`{"id":"evt_1","type":"account.updated","account":"acct_9","data":{"object":{"id":"acct_9"}}}`)}
	platform := Event{ID: "evt_2", Type: "charge.refunded",
		Payload: json.RawMessage(`{"id":"evt_2","type":"charge.refunded","data":{"object":{"id":"ch_1"}}}`)}
	if b, err := Decode[object](connect); err != nil || b.Account != "acct_9" {
		t.Errorf("struct object: account %q, %v", b.Account, err)
	}
	if b, err := Decode[selfDecoding](connect); err != nil || b.Account != "acct_9" || b.Object.id != "acct_9" {
		t.Errorf("self-decoding object: account %q, %v", b.Account, err)
	}
	if b, err := Decode[Opaque](connect); err != nil || b.Account != "acct_9" {
		t.Errorf("opaque object: account %q, %v", b.Account, err)
	}
	if b, err := Decode[object](platform); err != nil || b.Account != "" {
		t.Errorf("platform event: account %q, %v", b.Account, err)
	}
}

// selfDecoding is a data.object type that decodes itself, as stripe-go's
// do.
type selfDecoding struct{ id string }

func (o *selfDecoding) UnmarshalJSON(b []byte) error {
	var v struct {
		ID string `json:"id"`
	}
	err := json.Unmarshal(b, &v)
	o.id = v.ID
	return err
}
