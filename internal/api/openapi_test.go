package api_test

import (
	"bytes"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/api/apitest"
	"github.com/paystream/paystream/model"
)

// openAPIValidator parses the embedded document and checks it is a valid
// OpenAPI 3.1 document.
func openAPIValidator(t *testing.T) (validator.Validator, libopenapi.Document) {
	t.Helper()
	doc, err := libopenapi.NewDocument(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.GetVersion(); !strings.HasPrefix(v, "3.1") {
		t.Fatalf("OpenAPI version %s, want 3.1", v)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("document: %s: %s", e.Message, e.Reason)
		}
		t.FailNow()
	}
	return v, doc
}

// Every route the server registers is in the document, and vice versa.
func TestOpenAPIListsExactlyTheRoutes(t *testing.T) {
	_, doc := openAPIValidator(t)
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	registered := api.Routes()
	sort.Strings(documented)
	sort.Strings(registered)
	if strings.Join(documented, "\n") != strings.Join(registered, "\n") {
		t.Errorf("document lists\n  %s\nserver registers\n  %s", strings.Join(documented, "\n  "), strings.Join(registered, "\n  "))
	}
}

// Sample answers of every route and status the tests can provoke validate
// against the document (schemas are closed: a field the server adds without
// documenting it fails here).
func TestOpenAPISampleResponsesValidate(t *testing.T) {
	v, _ := openAPIValidator(t)
	h := newHarness(t, func(c *api.Config) { c.RateLimit = 1000 })
	owner := h.purchase("owner", model.PurchaseCompleted, time.Now())
	h.grant(&model.ContentAccess{UserID: "owner", AccessType: model.AccessPurchased, PurchaseID: &owner.ID})
	h.grant(&model.ContentAccess{UserID: "comp", AccessType: model.AccessComplimentary})
	lost := h.purchase("disputed", model.PurchaseCompleted, time.Now())
	if _, err := h.db.NewUpdate().Model((*model.Purchase)(nil)).Where("id = ?", lost.ID).
		Set("dispute_status = 'lost'").Set("disputed_at = now()").Set("status = 'dispute_lost'").Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	paid := `{"customer_id":"buyer","content_id":"` + h.paid.String() + `"}`
	samples := []openAPISample{
		{"POST", "/v1/checkout/sessions", paid, keyA, []string{"Idempotency-Key", "oa-1"}, 201},
		{"POST", "/v1/checkout/sessions", paid, keyA, nil, 200},
		{"POST", "/v1/checkout/sessions", `{"customer_id":"","content_id":"x"}`, keyA, nil, 400},
		{"POST", "/v1/checkout/sessions", `{"customer_id":"b","content_id":"` + h.free.String() + `"}`, keyA, nil, 400},
		{"POST", "/v1/checkout/sessions", `{"customer_id":"b","content_id":"` + uuid.NewString() + `"}`, keyA, nil, 404},
		{"POST", "/v1/checkout/sessions", `{"customer_id":"owner","content_id":"` + h.paid.String() + `"}`, keyA, nil, 409},
		{"POST", "/v1/checkout/sessions", paid, "", nil, 401},
		{"POST", "/v1/checkout/sessions", `{"customer_id":"b2","content_id":"` + h.paid.String() + `"}`, keyA, []string{"fail", "500"}, 502},
		{"POST", "/v1/checkout/sessions", `{"customer_id":"b3","content_id":"` + h.paid.String() + `"}`, keyA, []string{"fail", "429"}, 503},
		{"GET", "/v1/customers/owner/access/" + h.paid.String(), "", keyA, nil, 200},
		{"GET", "/v1/customers/comp/access/" + h.paid.String(), "", keyB, nil, 200},
		{"GET", "/v1/customers/nobody/access/" + h.paid.String(), "", keyA, nil, 200},
		{"GET", "/v1/customers/owner/access/nope", "", keyA, nil, 400},
		{"GET", "/v1/customers/owner/purchases?limit=1", "", keyA, nil, 200},
		{"GET", "/v1/customers/owner/purchases?status=refunded", "", keyA, nil, 200},
		{"GET", "/v1/customers/owner/purchases?limit=500", "", keyA, nil, 400},
		{"GET", "/v1/purchases/" + owner.ID.String(), "", keyA, nil, 200},
		{"GET", "/v1/purchases/" + lost.ID.String(), "", keyA, nil, 200},
		{"GET", "/v1/purchases/" + uuid.NewString(), "", keyA, nil, 404},
		{"GET", "/v1/purchases/" + owner.ID.String(), "", "wrong_key_0123456789", nil, 401},
	}
	for _, s := range samples {
		s.check(t, v, h)
	}
}

// The subscription routes' answers validate too.
func TestOpenAPISubscriptionSamplesValidate(t *testing.T) {
	v, _ := openAPIValidator(t)
	h := newHarness(t, func(c *api.Config) { c.RateLimit = 1000 })
	plan, trial := h.plan("creator_1", 900, 0), h.plan("", 5000, 14)
	live := h.stripeSubscription("member", plan)
	h.subscribe("sub_ended", "member", trial, model.SubscriptionCanceled, time.Now().Add(-time.Hour))
	body := func(customer string, plan uuid.UUID) string {
		return `{"customer_id":"` + customer + `","plan_id":"` + plan.String() + `"}`
	}
	samples := []openAPISample{
		{"POST", "/v1/subscriptions/checkout", body("buyer", trial.ID), keyA, []string{"Idempotency-Key", "oa-sub-1"}, 201},
		{"POST", "/v1/subscriptions/checkout", body("buyer", trial.ID), keyA, nil, 200},
		{"POST", "/v1/subscriptions/checkout", `{"customer_id":"buyer","plan_id":"x"}`, keyA, nil, 400},
		{"POST", "/v1/subscriptions/checkout", body("buyer", uuid.New()), keyA, nil, 404},
		{"POST", "/v1/subscriptions/checkout", body("member", plan.ID), keyA, nil, 409},
		{"POST", "/v1/subscriptions/checkout", body("b2", plan.ID), keyA, []string{"fail", "500"}, 502},
		{"POST", "/v1/subscriptions/checkout", body("b3", plan.ID), keyA, []string{"fail", "429"}, 503},
		{"POST", "/v1/subscriptions/checkout", body("b4", plan.ID), "", nil, 401},
		{"GET", "/v1/customers/member/subscriptions", "", keyA, nil, 200},
		{"GET", "/v1/customers/member/subscriptions?limit=1", "", keyA, nil, 200},
		{"GET", "/v1/customers/member/subscriptions?starting_after=sub_nope", "", keyA, nil, 400},
		{"GET", "/v1/customers/member/access/" + h.paid.String(), "", keyA, nil, 200},
		{"POST", "/v1/subscriptions/" + live.ID + "/cancel", "", keyA, nil, 200},
		{"POST", "/v1/subscriptions/" + live.ID + "/resume", "", keyA, nil, 200},
		{"POST", "/v1/subscriptions/sub_unknown/cancel", "", keyA, nil, 404},
		{"POST", "/v1/subscriptions/sub_ended/resume", "", keyA, nil, 409},
		{"POST", "/v1/subscriptions/" + live.ID + "/cancel", "", keyA, []string{"fail", "500"}, 502},
		{"POST", "/v1/customers/member/portal_sessions", "", keyA, nil, 201},
		{"POST", "/v1/customers/member/portal_sessions", `{"return_url":"https://shop.example/back"}`, keyA, nil, 201},
		{"POST", "/v1/customers/member/portal_sessions", `{"return_url":"https://evil.example/"}`, keyA, nil, 400},
		{"POST", "/v1/customers/nobody/portal_sessions", "", keyA, nil, 404},
	}
	for _, s := range samples {
		s.check(t, v, h)
	}
}

// openAPISample is one request whose answer must validate.
type openAPISample struct {
	method, path, body string
	key                string
	hdr                []string // header pairs; ("fail", "500") makes the fake Stripe fail the next call
	status             int
}

// check sends the request and validates the answer against the document.
func (s openAPISample) check(t *testing.T, v validator.Validator, h *harness) {
	t.Helper()
	t.Run(s.method+" "+s.path+" "+http.StatusText(s.status), func(t *testing.T) {
		var hdr []string
		for i := 0; i+1 < len(s.hdr); i += 2 {
			if s.hdr[i] == "fail" {
				code := map[string]int{"500": 500, "429": 429}[s.hdr[i+1]]
				h.stripe.FailNext(apitest.Failure{Status: code})
				continue
			}
			hdr = append(hdr, s.hdr[i], s.hdr[i+1])
		}
		var body any
		if s.body != "" {
			body = []byte(s.body)
		}
		r := h.call(s.method, s.path, s.key, body, hdr...)
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

// The validator is not a rubber stamp: an undocumented field, a wrong type
// and an error body of another shape all fail.
func TestOpenAPIRejectsWhatItDoesNotDescribe(t *testing.T) {
	v, _ := openAPIValidator(t)
	// Control: the same request with a valid body, on any host, validates.
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:5555/v1/customers/u/purchases", nil)
	res := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"object":"list","data":[],"has_more":false}`)), Request: req}
	if ok, errs := v.ValidateHttpResponse(req, res); !ok {
		t.Fatalf("valid control failed: %v", errs[0].Message)
	}
	for name, tc := range map[string]struct {
		status int
		body   string
	}{
		"undocumented field":  {200, `{"object":"list","data":[],"has_more":false,"total":3}`},
		"wrong type":          {200, `{"object":"list","data":[],"has_more":"no"}`},
		"other error shape":   {400, `{"message":"bad"}`},
		"undocumented code":   {400, `{"error":{"code":"oops","message":"bad"}}`},
		"undocumented status": {418, `{"error":{"code":"internal","message":"teapot"}}`},
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:5555/v1/customers/u/purchases", nil)
		res := &http.Response{StatusCode: tc.status, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(tc.body)), Request: req}
		if ok, _ := v.ValidateHttpResponse(req, res); ok {
			t.Errorf("%s: %d %s validated", name, tc.status, tc.body)
		}
	}
}
