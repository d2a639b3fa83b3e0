package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/model"
)

// A query string Go's parser cannot read entirely is 400, not a page of
// unfiltered purchases: url.ParseQuery drops a pair holding a semicolon,
// so ignoring its error would ignore the filter.
func TestPurchaseHistoryRefusesMalformedQueries(t *testing.T) {
	h := newHarness(t, nil)
	h.purchase("hist", model.PurchaseCompleted, time.Now())
	h.purchase("hist", model.PurchaseRefunded, time.Now())
	for _, q := range []string{"status=completed';--", "status=completed;", "limit=1;status=refunded", "status=%zz", "limit=%"} {
		t.Run(q, func(t *testing.T) {
			r := h.call(http.MethodGet, "/v1/customers/hist/purchases?"+q, keyA, nil)
			e, _ := r.Body["error"].(map[string]any)
			if r.Status != http.StatusBadRequest || r.errCode() != api.CodeInvalidRequest || !strings.Contains(e["message"].(string), "query") {
				t.Fatalf("got %d %s, want 400 invalid_request naming the query", r.Status, r.Raw)
			}
		})
	}
	// Every route answers a malformed query string the same way, even one
	// that reads no parameter.
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/v1/customers/hist/access/" + h.paid.String()},
		{http.MethodGet, "/v1/purchases/" + h.paid.String()},
		{http.MethodPost, "/v1/checkout/sessions"},
	} {
		var body any
		if c.method == http.MethodPost {
			body = map[string]string{"customer_id": "hist", "content_id": h.paid.String()}
		}
		r := h.call(c.method, c.path+"?expand=a;b", keyA, body)
		e, _ := r.Body["error"].(map[string]any)
		fields, _ := e["fields"].(map[string]any)
		if r.Status != http.StatusBadRequest || fields["query"] == nil {
			t.Errorf("%s %s: got %d %s, want 400 naming query", c.method, c.path, r.Status, r.Raw)
		}
	}
	r := h.call(http.MethodGet, "/v1/customers/hist/purchases?"+url.Values{"status": {"completed"}}.Encode(), keyA, nil)
	if data, _ := r.Body["data"].([]any); r.Status != http.StatusOK || len(data) != 1 {
		t.Errorf("well-formed filter: %d %s", r.Status, r.Raw)
	}
}

// The purchase history refuses a customer id that is not printable text
// as the access check does, and serves one that merely looks like an
// escape.
func TestPurchaseHistoryRefusesCustomerIDsThatAreNotText(t *testing.T) {
	h := newHarness(t, nil)
	for _, tt := range badCustomerIDs {
		t.Run(tt.name, func(t *testing.T) {
			r := h.call(http.MethodGet, "/v1/customers/"+tt.path+"/purchases", keyA, nil)
			e, _ := r.Body["error"].(map[string]any)
			fields, _ := e["fields"].(map[string]any)
			if r.Status != http.StatusBadRequest || r.errCode() != api.CodeInvalidRequest || fields["customer"] == nil {
				t.Fatalf("got %d %s, want 400 invalid_request naming customer", r.Status, r.Raw)
			}
		})
	}
	for _, c := range goodCustomerIDs {
		p := h.purchase(c, model.PurchaseCompleted, time.Now())
		r := h.call(http.MethodGet, "/v1/customers/"+url.PathEscape(c)+"/purchases", keyA, nil)
		data, _ := r.Body["data"].([]any)
		if r.Status != http.StatusOK || len(data) != 1 || data[0].(map[string]any)["id"] != p.ID.String() {
			t.Errorf("%q: got %d %s", c, r.Status, r.Raw)
		}
	}
}
