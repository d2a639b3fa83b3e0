package stripeevent

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/stripefixture"
)

// envelopeSeeds are realistic events of every fixture type, the bodies of
// FuzzHandler's committed corpus, and hand-made corner cases of the JSON
// grammar and of encoding/json's field matching.
func envelopeSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	meta := stripefixture.Meta{EventID: "evt_seed0000000000000000000", Created: time.Unix(1700000000, 0)}
	var seeds [][]byte
	add := func(b []byte, err error) {
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	for _, typ := range []string{"checkout.session.completed", "checkout.session.expired", "checkout.session.async_payment_failed"} {
		add(stripefixture.CheckoutEvent(typ, meta, stripefixture.Checkout{AmountTotal: 2999,
			Metadata: stripefixture.PurchaseMetadata("user_1", "c0ffee00-0000-4000-8000-000000000001", "0e000000-0000-4000-8000-000000000001", 2999, "usd")}))
	}
	add(stripefixture.ChargeRefundedEvent(meta, stripefixture.Charge{ChargeID: "ch_1", PaymentIntentID: "pi_1", Amount: 2999,
		Refunds: []stripefixture.Refund{{ID: "re_1", Amount: 1000}}}))
	add(stripefixture.DisputeEvent("charge.dispute.created", meta, stripefixture.Dispute{DisputeID: "du_1", ChargeID: "ch_1", Amount: 2999, Status: "needs_response"}))
	add(stripefixture.PaymentIntentEvent("payment_intent.succeeded", meta, stripefixture.PaymentIntent{ID: "pi_1", Amount: 2999, ChargeID: "ch_1"}))

	// The edge's handler fuzz corpus: real webhook bodies and what fuzzing found.
	files, _ := filepath.Glob("../edge/testdata/fuzz/FuzzHandler/*")
	if len(files) == 0 {
		tb.Fatal("the edge's FuzzHandler corpus is not at ../edge/testdata/fuzz/FuzzHandler")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if q, ok := strings.CutPrefix(line, "[]byte("); ok {
				if s, err := strconv.Unquote(strings.TrimSuffix(q, ")")); err == nil {
					seeds = append(seeds, []byte(s))
				}
			}
		}
	}
	for _, s := range []string{
		`{"id":"evt_1","object":"event","type":"a.b","api_version":"2024-01-01","livemode":true,"created":1}`,
		` {"ID":"evt_1","OBJECT":"event","Type":"a.b","Api_Version":"x","LiveMode":false,"Created":-0} `,
		`{"id":"evt_1","id":"evt_2","id":null,"livemode":true,"livemode":null}`,
		`{"id":"evt_\u0031","object":"ev\u0065nt"}`, `{"\u0069d":"evt_1"}`, `{"id":"evt_é"}`, `{"api_ſersion":"x"}`,
		`{"api_version":"\ud800"}`, `{"api_version":"a\/b"}`, "{\"api_version\":\"\xff\"}",
		`{"created":1.0}`, `{"created":1e3}`, `{"created":9223372036854775808}`, `{"created":"1"}`, `{"created":-9223372036854775808}`,
		`{"livemode":"true"}`, `{"livemode":1}`, `{"id":1}`, `{"id":{}}`, `{"type":[]}`, `{"object":true}`,
		`{"data":{"object":{"a":[1,2,{"b":null}],"c":"\"}"}},"id":"evt_x"}`, `{"a":[]}`, `{"a":{}}`, `{"a":[{}]}`,
		`{}`, `[]`, `null`, `"x"`, `1`, ``, ` `, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,"a":1}`, `{"a":1}x`,
		`{"a":[1,]}`, `{"a":[,1]}`, `{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":.1}`, `{"a":1e}`, `{"a":1e+}`, `{"a":tru}`,
		`{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12g4"}`, "{\"a\":\"\t\"}", "{\"a\":\"\x00\"}", `{"a":"unterminated}`,
		`{"a":[}`, `{"a":{]}`, `{"a":{"b":1]}`, `{"a" : 1 , "b" : [ 1 , 2 ] }`, "{\"a\":1}\n\t\r ", `{"a":NaN}`,
		`{"a":-0.0e-0}`, `{"a":[[[[[]]]]]}`, `{"a":{"b":{"c":{}}}}`, `{"a":"\u00e9"}`, `{"":1}`,
		`{"a":1 "b":2}`, `{"a":[1 2]}`, `{"a"::1}`, `{"a":[1]]}`, `{"a":1}}`,
	} {
		seeds = append(seeds, []byte(s))
	}
	seeds = append(seeds, []byte(`{"a":`+strings.Repeat("[", 9999)+strings.Repeat("]", 9999)+`}`),
		[]byte(`{"a":`+strings.Repeat("[", 10000)+strings.Repeat("]", 10000)+`}`))
	return seeds
}

// checkEnvelope asserts that scan gives json.Unmarshal's answer.
func checkEnvelope(t *testing.T, body []byte) {
	t.Helper()
	got, gotErr := scan(body)
	want, wantErr := unmarshal(body)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("body %.200q: scanner error %v, encoding/json error %v", body, gotErr, wantErr)
	}
	if gotErr == nil && got != want {
		t.Fatalf("body %.200q: scanner %+v, encoding/json %+v", body, got, want)
	}
}

func TestScanEnvelopeMatchesEncodingJSON(t *testing.T) {
	for _, b := range envelopeSeeds(t) {
		checkEnvelope(t, b)
	}
}

// FuzzScanEnvelope is the differential test of the scanner: for any input it
// must accept exactly what json.Unmarshal accepts, with the same fields.
func FuzzScanEnvelope(f *testing.F) {
	for _, b := range envelopeSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkEnvelope(t, body) })
}

// BenchmarkScan compares the scanner with the encoding/json decode it
// stands in for, on a 2.6 KB checkout event.
func BenchmarkScan(b *testing.B) {
	body, err := stripefixture.CheckoutEvent("checkout.session.completed",
		stripefixture.Meta{EventID: "evt_bench000000000000000000", Created: time.Unix(1700000000, 0)},
		stripefixture.Checkout{AmountTotal: 2999, Metadata: stripefixture.PurchaseMetadata(
			"user_1", "c0ffee00-0000-4000-8000-000000000001", "0e000000-0000-4000-8000-000000000001", 2999, "usd")})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		decode func([]byte) (envelope, error)
	}{{"scanner", scan}, {"encoding_json", unmarshal}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.decode(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
