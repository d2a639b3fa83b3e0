package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/api/apitest"
	"github.com/paystream/paystream/internal/app/apiservice"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/apiconfig"
	"github.com/paystream/paystream/internal/edge"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/model"
)

// The platform's acceptance flows, through every component: the purchase
// API (against a fake Stripe) creates the checkout, the signed webhook goes
// through the edge, JetStream and the processor into Postgres, and the API
// answers from there.

const apiKey = "e2e_key_0123456789abcdef"

// apiClient talks to a running purchase API.
type apiClient struct {
	t      *testing.T
	url    string
	stripe *apitest.Stripe
}

// startAPI starts the purchase API exactly as cmd/api does, through
// app.App (its own pool, schema check, registry, admin listener) on the
// stack's database and free ports, against a fake Stripe; it stops at
// cleanup.
func (s *stack) startAPI() *apiClient {
	t := s.t
	t.Helper()
	fake := apitest.NewStripe(t)
	cfg, err := apiconfig.Parse(config.MapEnv(map[string]string{
		"DATABASE_URL": s.dsn, "API_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0", "DB_MAX_CONNS": "4",
		"API_KEYS": apiKey, "STRIPE_SECRET_KEY": fake.Key, "STRIPE_API_BASE": fake.URL(), "STRIPE_MAX_NETWORK_RETRIES": "1",
		"API_RATE_LIMIT": "0",
	}))
	if err != nil {
		t.Fatal(err)
	}
	addrs := s.runApp("api", apiservice.New(cfg))
	if addrs.API.Public == "" || addrs.API.Admin == "" {
		t.Fatalf("api ready without its addresses: %+v", addrs.API)
	}
	return &apiClient{t: t, url: "http://" + addrs.API.Public, stripe: fake}
}

// do calls the API and decodes the JSON answer.
func (c *apiClient) do(method, path string, body any) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.url+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		c.t.Fatalf("%s %s: %d, body is not JSON: %v", method, path, res.StatusCode, err)
	}
	return res.StatusCode, out
}

// createCheckout asks for a checkout and returns the status and session id.
func (c *apiClient) createCheckout(customer string, content uuid.UUID) (int, string, map[string]any) {
	c.t.Helper()
	code, body := c.do(http.MethodPost, "/v1/checkout/sessions", map[string]string{"customer_id": customer, "content_id": content.String()})
	id, _ := body["id"].(string)
	return code, id, body
}

func (c *apiClient) access(customer string, content uuid.UUID) map[string]any {
	c.t.Helper()
	code, body := c.do(http.MethodGet, "/v1/customers/"+customer+"/access/"+content.String(), nil)
	if code != http.StatusOK {
		c.t.Fatalf("access check: %d %v", code, body)
	}
	return body
}

// stripeEvent builds the checkout.session.* event Stripe would send for a
// session the API created, with the metadata the API wrote on it.
func (s *stack) stripeEvent(c *apiClient, typ, eventID, session string, at time.Time) []byte {
	s.t.Helper()
	obj := c.stripe.Session(session)
	if obj == nil {
		s.t.Fatalf("fake Stripe has no session %s", session)
	}
	md := map[string]string{}
	for k, v := range obj["metadata"].(map[string]any) {
		md[k] = v.(string)
	}
	return s.checkout(typ, eventID, session, at, func(ch *stripefixture.Checkout) {
		ch.Metadata = md
		ch.AmountTotal = obj["amount_total"].(int64)
		ch.Currency = obj["currency"].(string)
		if typ == "checkout.session.expired" {
			ch.PaymentIntentID, ch.PaymentStatus = "", "unpaid"
		}
	})
}

func (s *stack) sessionStatus(id string) string {
	s.t.Helper()
	var cs model.CheckoutSession
	if err := s.db.NewSelect().Model(&cs).Where("id = ?", id).Scan(context.Background()); err != nil {
		s.t.Fatalf("checkout session %s: %v", id, err)
	}
	return cs.Status
}

func TestAPIAcceptanceFlows(t *testing.T) {
	s := newStack(t)
	s.startProcessor(procOpts{})
	c := s.startAPI()
	free := uuid.New()
	if _, err := s.db.NewInsert().Model(&model.Content{ID: free, CreatorID: creatorID, OrganizationID: s.cat.org,
		PriceCents: 0, Currency: currency, Visibility: "public"}).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	const buyer = "buyer_1"
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	var session string
	var paid []byte

	s.run(t, "1 full paid purchase", func(t *testing.T) {
		code, id, body := c.createCheckout(buyer, s.cat.content)
		if code != http.StatusCreated || body["amount_cents"] != float64(price) {
			t.Fatalf("create checkout: %d %v", code, body)
		}
		session = id
		if a := c.access(buyer, s.cat.content); a["active"] != false {
			t.Errorf("access before payment: %v", a)
		}
		paid = s.stripeEvent(c, typeCompleted, "evt_api_paid", session, at)
		s.mustPost(paid)
		s.waitSettled(20 * time.Second)

		a := c.access(buyer, s.cat.content)
		p, _ := a["purchase"].(map[string]any)
		if a["active"] != true || a["access_type"] != "purchased" || p["status"] != model.PurchaseCompleted {
			t.Fatalf("access after payment: %v", a)
		}
		code, list := c.do(http.MethodGet, "/v1/customers/"+buyer+"/purchases", nil)
		data, _ := list["data"].([]any)
		if code != http.StatusOK || len(data) != 1 {
			t.Fatalf("history: %d %v", code, list)
		}
		got := data[0].(map[string]any)
		split := got["split"].(map[string]any)
		want := expectedSplit(t)
		if got["id"] != p["id"] || got["checkout_session_id"] != session || got["amount_cents"] != float64(price) ||
			split["platform_fee_cents"] != float64(want.Platform) || split["organization_fee_cents"] != float64(want.Organization) ||
			split["creator_payout_cents"] != float64(want.Creator) {
			t.Errorf("history entry = %v, want split %+v", got, want)
		}
		if code, one := c.do(http.MethodGet, "/v1/purchases/"+p["id"].(string), nil); code != http.StatusOK || one["id"] != p["id"] {
			t.Errorf("get purchase: %d %v", code, one)
		}
		if st := s.sessionStatus(session); st != model.CheckoutComplete {
			t.Errorf("checkout session row is %s, want complete", st)
		}
	})

	s.run(t, "2 the same webhook twice is one purchase", func(t *testing.T) {
		s.mustPost(paid)
		s.waitSettled(20 * time.Second)
		if n := s.count("purchases", "stripe_checkout_session_id = ?", session); n != 1 {
			t.Errorf("%d purchases for the session, want 1", n)
		}
		if n := s.count("stripe_events", "event_id = ?", "evt_api_paid"); n != 1 {
			t.Errorf("%d stripe_events rows, want 1", n)
		}
	})

	s.run(t, "3 invalid signature changes nothing", func(t *testing.T) {
		before := s.count("stripe_events", "TRUE")
		body := s.stripeEvent(c, typeCompleted, "evt_api_forged", session, at)
		req, _ := http.NewRequest(http.MethodPost, s.edge+edge.RoutePrefix, bytes.NewReader(body))
		req.Header.Set("Stripe-Signature", stripefixture.Sign(body, stripefixture.NewSecret(), time.Now()))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("forged webhook: %d, want 401", res.StatusCode)
		}
		s.waitSettled(20 * time.Second)
		if after := s.count("stripe_events", "TRUE"); after != before {
			t.Errorf("stripe_events %d → %d after a forged webhook", before, after)
		}
	})

	s.run(t, "4 checkout of owned content is 409", func(t *testing.T) {
		if code, _, body := c.createCheckout(buyer, s.cat.content); code != http.StatusConflict {
			t.Errorf("got %d %v", code, body)
		}
	})

	s.run(t, "5 checkout of free content is 400", func(t *testing.T) {
		if code, _, body := c.createCheckout(buyer, free); code != http.StatusBadRequest {
			t.Errorf("got %d %v", code, body)
		}
	})

	s.run(t, "refund revokes access", func(t *testing.T) {
		s.mustPost(s.fullRefund("evt_api_refund", session, at.Add(time.Second)))
		s.waitSettled(20 * time.Second)
		a := c.access(buyer, s.cat.content)
		if p, _ := a["purchase"].(map[string]any); a["active"] != false || p["status"] != model.PurchaseRefunded {
			t.Errorf("access after refund: %v", a)
		}
		if code, _, body := c.createCheckout(buyer, s.cat.content); code != http.StatusCreated {
			t.Errorf("checkout after refund: %d %v", code, body)
		}
	})

	s.run(t, "an expired session frees the customer", func(t *testing.T) {
		const customer = "buyer_2"
		code, first, _ := c.createCheckout(customer, s.cat.content)
		if code != http.StatusCreated {
			t.Fatalf("first checkout: %d", code)
		}
		if code, again, _ := c.createCheckout(customer, s.cat.content); code != http.StatusOK || again != first {
			t.Fatalf("second checkout while open: %d %s, want 200 %s", code, again, first)
		}
		s.mustPost(s.stripeEvent(c, "checkout.session.expired", "evt_api_expired", first, at))
		s.waitSettled(20 * time.Second)
		if st := s.sessionStatus(first); st != model.CheckoutExpired {
			t.Fatalf("session %s is %s, want expired", first, st)
		}
		code, fresh, _ := c.createCheckout(customer, s.cat.content)
		if code != http.StatusCreated || fresh == first {
			t.Errorf("checkout after expiry: %d %s, want 201 with a new session", code, fresh)
		}
	})
}
