package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/paystream/paystream/internal/api"
)

// A checkout body whose customer_id (or redirect URL) is not printable
// text is 400 naming the field, writes nothing and never reaches Stripe.
// The raw bodies carry what a JSON encoder would not produce: invalid
// UTF-8 bytes and lone surrogate escapes.
func TestCreateCheckoutRefusesTextThatIsNotText(t *testing.T) {
	h := newHarness(t, nil)
	body := func(field, raw string) []byte {
		b := `{"customer_id":"u_text","content_id":"` + h.paid.String() + `"`
		if field == "customer_id" {
			b = `{"customer_id":"` + raw + `","content_id":"` + h.paid.String() + `"`
		} else {
			b += `,"` + field + `":"` + raw + `"`
		}
		return []byte(b + "}")
	}
	tests := []struct{ name, field, raw string }{
		{"NUL escape", "customer_id", `a\u0000b`},
		{"invalid UTF-8", "customer_id", "a\xffb"},
		{"lone surrogate", "customer_id", `a\udc00b`},
		{"bell", "customer_id", `a\u0007b`},
		{"line separator", "customer_id", `a\u2028b`},
		{"over 255 bytes", "customer_id", strings.Repeat("é", 128)},
		{"NUL in success_url", "success_url", `https://shop.example/ok\u0000`},
		{"invalid UTF-8 in cancel_url", "cancel_url", "https://shop.example/\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.call(http.MethodPost, "/v1/checkout/sessions", keyA, body(tt.field, tt.raw))
			e, _ := r.Body["error"].(map[string]any)
			fields, _ := e["fields"].(map[string]any)
			if r.Status != http.StatusBadRequest || r.errCode() != api.CodeInvalidRequest || fields[tt.field] == nil ||
				!strings.Contains(e["message"].(string), tt.field) {
				t.Fatalf("got %d %s, want 400 invalid_request naming %s", r.Status, r.Raw, tt.field)
			}
		})
	}
	if n := len(h.sessionRows("")); n != 0 {
		t.Errorf("%d sessions recorded for refused bodies", n)
	}
	if n := len(h.stripe.Calls()); n != 0 {
		t.Errorf("%d Stripe calls for refused bodies", n)
	}
	// Text that looks like an escape is text: the six characters \u0000
	// are a customer id, stored and sent to Stripe as typed.
	for _, c := range goodCustomerIDs {
		b, _ := json.Marshal(map[string]string{"customer_id": c, "content_id": h.paid.String()})
		r := h.call(http.MethodPost, "/v1/checkout/sessions", keyA, b)
		if r.Status != http.StatusCreated || r.Body["customer_id"] != c {
			t.Fatalf("%q: got %d %s", c, r.Status, r.Raw)
		}
		if rows := h.sessionRows("customer_id = ?", c); len(rows) != 1 {
			t.Errorf("%q: %d session rows", c, len(rows))
		}
		calls := h.stripe.Calls()
		if md := calls[len(calls)-1].Form["metadata[customerId]"]; md != c {
			t.Errorf("%q: Stripe metadata customerId = %q", c, md)
		}
	}
}
