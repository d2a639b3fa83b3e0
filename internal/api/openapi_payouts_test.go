package api_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/model"
)

// Sample answers of every payout route and the statuses the tests can
// provoke validate against the document, whose schemas are closed.
func TestOpenAPIPayoutSamplesValidate(t *testing.T) {
	v, _ := openAPIValidator(t)
	h, _ := newConnectHarness(t)
	w := newWorld(t, h)
	at := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Second)
	i := w.buy(t, h.org, "usd", 2999, at, true)
	w.refund(t, i, 999)
	j := w.buy(t, h.org, "usd", 1999, at.Add(time.Hour), true)
	w.dispute(t, j, 1999, "lost")
	w.buy(t, h.org, "eur", 900, at, true)
	w.payAll(t)
	w.reverse(t, creatorA, 10)
	h.insert(&model.Payee{Kind: model.PayeeCreator, ID: "fresh", RequirementsDue: model.JSON(`["external_account"]`)})
	window := url.Values{"currency": {"usd"}, "from": {at.Add(-time.Hour).Format(time.RFC3339)}, "to": {time.Now().Add(time.Hour).Format(time.RFC3339)}}
	orgWindow := url.Values{"organization_id": {h.org.String()}}
	for k, vs := range window {
		orgWindow[k] = vs
	}
	samples := []struct {
		method, path, body string
		key                string
		status             int
	}{
		{"POST", "/v1/payees/creator/new_creator/onboarding", "", keyA, 200},
		{"POST", "/v1/payees/creator/new_creator/onboarding", `{"return_url":"https://shop.example/back"}`, keyA, 200},
		{"POST", "/v1/payees/team/x/onboarding", "", keyA, 400},
		{"POST", "/v1/payees/creator/c/onboarding", `{"refresh_url":"https://evil.example/"}`, keyA, 400},
		{"POST", "/v1/payees/creator/c/onboarding", "", "", 401},
		{"GET", "/v1/payees/creator/" + creatorA, "", keyA, 200},
		{"GET", "/v1/payees/organization/" + h.org.String(), "", keyB, 200},
		{"GET", "/v1/payees/creator/fresh", "", keyA, 200},
		{"GET", "/v1/payees/creator/nobody", "", keyA, 404},
		{"GET", "/v1/payees/organization/nope", "", keyA, 400},
		{"GET", "/v1/payees/creator/" + creatorA + "/ledger?limit=3", "", keyA, 200},
		{"GET", "/v1/payees/creator/" + creatorA + "/ledger?currency=eur", "", keyA, 200},
		{"GET", "/v1/payees/creator/" + creatorA + "/ledger?currency=EUR", "", keyA, 400},
		{"GET", "/v1/payees/creator/nobody/ledger", "", keyA, 404},
		{"GET", "/v1/payees/creator/" + creatorA + "/payouts?limit=1", "", keyA, 200},
		{"GET", "/v1/payees/creator/fresh/payouts", "", keyA, 200},
		{"GET", "/v1/payees/creator/" + creatorA + "/payouts?starting_after=" + uuid.NewString(), "", keyA, 400},
		{"GET", "/v1/payees/creator/nobody/payouts", "", keyA, 404},
		{"GET", "/v1/reports/revenue?" + window.Encode(), "", keyA, 200},
		{"GET", "/v1/reports/revenue?" + orgWindow.Encode(), "", keyA, 200},
		{"GET", "/v1/reports/revenue?currency=usd", "", keyA, 400},
		{"GET", "/v1/reports/revenue?" + window.Encode(), "", "", 401},
	}
	for _, s := range samples {
		t.Run(s.method+" "+s.path+" "+http.StatusText(s.status), func(t *testing.T) {
			var body any
			if s.body != "" {
				body = []byte(s.body)
			}
			r := h.call(s.method, s.path, s.key, body)
			if r.Status != s.status {
				t.Fatalf("status %d, want %d: %s", r.Status, s.status, r.Raw)
			}
			req, _ := http.NewRequest(s.method, h.http.URL+s.path, strings.NewReader(s.body))
			if s.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			res := &http.Response{StatusCode: r.Status, Header: r.Header, Body: io.NopCloser(bytes.NewReader(r.Raw)), Request: req}
			if ok, errs := v.ValidateHttpResponse(req, res); !ok {
				for _, e := range errs {
					t.Errorf("%s: %s", e.Message, e.Reason)
					for _, se := range e.SchemaValidationErrors {
						t.Errorf("  %s at %s", se.Reason, se.FieldPath)
					}
				}
				t.Logf("body: %s", r.Raw)
			}
		})
	}
}
