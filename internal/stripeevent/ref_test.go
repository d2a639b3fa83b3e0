package stripeevent_test

import (
	"encoding/json"
	"testing"

	"github.com/paystream/paystream/internal/stripeevent"
)

func TestRefReadsAnIdOrAnExpandedObject(t *testing.T) {
	for in, want := range map[string]string{
		`{"r":"cus_123"}`:                     "cus_123",
		`{"r":{"id":"cus_123","object":"x"}}`: "cus_123",
		`{"r":null}`:                          "",
		`{}`:                                  "",
	} {
		var v struct {
			R stripeevent.Ref `json:"r"`
		}
		if err := json.Unmarshal([]byte(in), &v); err != nil || string(v.R) != want {
			t.Errorf("%s: %q, %v; want %q", in, v.R, err, want)
		}
	}
	for _, in := range []string{`{"r":12}`, `{"r":[1]}`, `{"r":{"id":7}}`} {
		var v struct {
			R stripeevent.Ref `json:"r"`
		}
		if err := json.Unmarshal([]byte(in), &v); err == nil {
			t.Errorf("%s: read as %q, want an error", in, v.R)
		}
	}
}
