package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/paystream/paystream/internal/api"
)

// badCustomerIDs are customer ids, as escaped path segments, that are not
// printable text: each is the caller's mistake, never an outage.
var badCustomerIDs = []struct{ name, path string }{
	{"NUL byte", "a%00b"},
	{"invalid UTF-8", "a%FFb"},
	{"control character", "a%07b"},
	{"C1 control character", "a%C2%85b"},
	{"line separator", "a%E2%80%A8b"},
	{"right-to-left override", "a%E2%80%AEb"},
	{"replacement character", "a%EF%BF%BDb"},
	{"padded", "%20a"},
	{"over 255 bytes", strings.Repeat("x", 256)},
}

// goodCustomerIDs are printable text, some of which merely look like
// escapes: customer ids like any other.
var goodCustomerIDs = []string{`\u0000`, `Jo "Q" \\ Ray`, "é☃😀", "it's'); --", strings.Repeat("x", 255)}

// A customer id that is not printable text is answered 400 naming the
// field, not 503: the database refusing the bytes is no outage.
func TestAccessCheckRefusesCustomerIDsThatAreNotText(t *testing.T) {
	h := newHarness(t, nil)
	for _, tt := range badCustomerIDs {
		t.Run(tt.name, func(t *testing.T) {
			r := h.call(http.MethodGet, "/v1/customers/"+tt.path+"/access/"+h.paid.String(), keyA, nil)
			e, _ := r.Body["error"].(map[string]any)
			fields, _ := e["fields"].(map[string]any)
			if r.Status != http.StatusBadRequest || r.errCode() != api.CodeInvalidRequest || fields["customer"] == nil ||
				!strings.Contains(e["message"].(string), "customer") {
				t.Fatalf("got %d %s, want 400 invalid_request naming customer", r.Status, r.Raw)
			}
		})
	}
	for _, c := range goodCustomerIDs {
		r := h.call(http.MethodGet, "/v1/customers/"+url.PathEscape(c)+"/access/"+h.paid.String(), keyA, nil)
		if r.Status != http.StatusOK || r.Body["customer_id"] != c || r.Body["active"] != false {
			t.Errorf("%q: got %d %s", c, r.Status, r.Raw)
		}
	}
}
