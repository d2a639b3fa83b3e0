package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/api/apitest"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// Bearer keys of the tests: two, as during a rotation.
const (
	keyA = "key_a_0123456789abcdef"
	keyB = "key_b_0123456789abcdef"
)

// harness is one API over a fresh database and a fake Stripe.
type harness struct {
	t      *testing.T
	db     *bun.DB
	srv    *api.Server
	http   *httptest.Server
	stripe *apitest.Stripe
	reg    *prometheus.Registry
	logs   *testenv.LogBuffer
	cfg    api.Config

	org, paid, free, deleted uuid.UUID
}

// newHarness starts the API; edit may change its configuration.
func newHarness(t *testing.T, edit func(*api.Config)) *harness {
	t.Helper()
	bdb, _ := testenv.DB(t)
	h := &harness{t: t, db: bdb, stripe: apitest.NewStripe(t), reg: prometheus.NewRegistry(), logs: &testenv.LogBuffer{},
		org: uuid.New(), paid: uuid.New(), free: uuid.New(), deleted: uuid.New()}
	h.cfg = api.Config{
		Keys: []string{keyA, keyB}, StripeSecretKey: h.stripe.Key, StripeAPIBase: h.stripe.URL(),
		StripeMaxNetworkRetries: 0, SuccessURL: "https://shop.example/ok", CancelURL: "https://shop.example/cancel",
		AllowedHosts: []string{"shop.example", ".cdn.example"},
	}
	if edit != nil {
		edit(&h.cfg)
	}
	now := time.Now()
	h.insert(
		&model.Content{ID: h.paid, CreatorID: "creator_1", OrganizationID: h.org, PriceCents: 2999, Currency: "usd", Visibility: "public"},
		&model.Content{ID: h.free, CreatorID: "creator_1", OrganizationID: h.org, PriceCents: 0, Currency: "usd", Visibility: "public"},
		&model.Content{ID: h.deleted, CreatorID: "creator_1", OrganizationID: h.org, PriceCents: 500, Currency: "eur", Visibility: "public", DeletedAt: &now},
	)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("api logs:\n%s", h.logs.String())
		}
	})
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := api.New(bdb, h.cfg, h.reg, log)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	t.Cleanup(func() { _ = srv.Close() }) // after the listener's (cleanups run last first)
	h.http = httptest.NewServer(srv.Handler())
	t.Cleanup(h.http.Close)
	return h
}

func (h *harness) insert(models ...any) {
	h.t.Helper()
	for _, m := range models {
		if _, err := h.db.NewInsert().Model(m).Exec(context.Background()); err != nil {
			h.t.Fatalf("insert %T: %v", m, err)
		}
	}
}

// resp is a decoded answer.
type resp struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

// errCode is the error code of an error body.
func (r resp) errCode() string {
	e, _ := r.Body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// call sends a request with key (none when ""), body encoded as JSON when
// not nil, and extra headers.
func (h *harness) call(method, path, key string, body any, hdr ...string) resp {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		if b, ok := body.([]byte); ok {
			rd = bytes.NewReader(b)
		} else {
			js, err := json.Marshal(body)
			if err != nil {
				h.t.Fatal(err)
			}
			rd = bytes.NewReader(js)
		}
	}
	req, err := http.NewRequest(method, h.http.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := resp{Status: res.StatusCode, Header: res.Header, Raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			h.t.Fatalf("%s %s: body is not a JSON object: %q", method, path, raw)
		}
	}
	return out
}

// checkout posts a checkout request for customer and content.
func (h *harness) checkout(customer string, content uuid.UUID, hdr ...string) resp {
	h.t.Helper()
	return h.call(http.MethodPost, "/v1/checkout/sessions", keyA,
		map[string]string{"customer_id": customer, "content_id": content.String()}, hdr...)
}

// purchase inserts a purchase of h.paid by customer with status, created at.
func (h *harness) purchase(customer, status string, created time.Time) *model.Purchase {
	h.t.Helper()
	p := &model.Purchase{ID: uuid.New(), CustomerID: customer, ContentID: h.paid, OrganizationID: h.org,
		AmountPaidCents: 2999, Currency: "usd", PlatformFeeCents: 300, OrganizationFeeCents: 0, CreatorPayoutCents: 2699,
		PlatformFeeBps: 1000, StripeCheckoutSessionID: "cs_" + uuid.NewString(), Status: status, CreatedAt: created, UpdatedAt: created}
	if status != model.PurchasePending && status != model.PurchaseFailed {
		p.PurchasedAt = &created
	}
	if status == model.PurchaseRefunded {
		p.RefundedAt, p.RefundAmountCents = &created, 2999
	}
	h.insert(p)
	return p
}

// grant inserts a content_access row.
func (h *harness) grant(a *model.ContentAccess) {
	h.t.Helper()
	a.ContentID, a.OrganizationID = h.paid, h.org
	if a.GrantedAt.IsZero() {
		a.GrantedAt = time.Now()
	}
	h.insert(a)
}

func (h *harness) sessionRows(where string, args ...any) []model.CheckoutSession {
	h.t.Helper()
	var rows []model.CheckoutSession
	q := h.db.NewSelect().Model(&rows)
	if where != "" {
		q = q.Where(where, args...)
	}
	if err := q.Scan(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	return rows
}

func newRegistry() *prometheus.Registry { return prometheus.NewRegistry() }

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
