package api_test

import (
	"math/rand/v2"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/api"
)

// report is RevenueReport's amounts, as the test expects them.
type report struct {
	Purchases, Gross, PlatformFees, OrganizationFees, CreatorShare, Refunded, Disputed, DisputeLost, PaidOut int64
}

// expected sums what the world's events said about the paid sales in
// currency with purchased_at in [from, to) (of org, unless uuid.Nil).
func (w *world) expected(currency string, from, to time.Time, org uuid.UUID) report {
	var r report
	for _, s := range w.sales {
		if !s.paid || s.currency != currency || s.at.Before(from) || !s.at.Before(to) || (org != uuid.Nil && s.org != org) {
			continue
		}
		r.Purchases++
		r.Gross += s.amount
		r.PlatformFees += s.split.Platform
		r.OrganizationFees += s.split.Organization
		r.CreatorShare += s.split.Creator
		r.Refunded += s.refunded
		r.Disputed += s.dispute
		if s.disputeEnd == "lost" {
			r.DisputeLost += s.dispute
		}
	}
	return r
}

// transferred sums the fake Stripe's transfers in currency to the
// accounts, net of reversals: what reached the payees.
func (w *world) transferred(currency string, accounts ...string) int64 {
	var sum int64
	for _, tr := range w.fake.Transfers() {
		for _, a := range accounts {
			if tr.Destination == a && tr.Currency == currency {
				sum += tr.Amount - tr.AmountReversed
			}
		}
	}
	return sum
}

func (h *harness) report(t *testing.T, currency string, from, to time.Time, org uuid.UUID) report {
	t.Helper()
	q := url.Values{"currency": {currency}, "from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}}
	if org != uuid.Nil {
		q.Set("organization_id", org.String())
	}
	r := h.call(http.MethodGet, "/v1/reports/revenue?"+q.Encode(), keyA, nil)
	if r.Status != http.StatusOK || r.Body["object"] != "revenue_report" || r.Body["currency"] != currency {
		t.Fatalf("report: %d %s", r.Status, r.Raw)
	}
	n := func(k string) int64 {
		v, ok := r.Body[k].(float64)
		if !ok {
			t.Fatalf("report field %s = %v", k, r.Body[k])
		}
		return int64(v)
	}
	return report{n("purchases"), n("gross"), n("platform_fees"), n("organization_fees"), n("creator_share"), n("refunded"),
		n("disputed"), n("dispute_lost"), n("paid_out")}
}

// The revenue report equals, to the cent, what the webhooks said: random
// purchases over two organizations with partial and full refunds and
// disputes opened, won and lost, through the processor's purchase family;
// purchases outside the window, unpaid or in another currency do not
// count; paid_out is what the fake Stripe received.
func TestRevenueReportEqualsTheWebhooks(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	h := newHarness(t, nil)
	w := newWorld(t, h)
	now := time.Now().UTC().Truncate(time.Second)
	start := now.Add(-10 * 24 * time.Hour)
	w.randomSales(t, rng, 60, start, 4*time.Hour)
	w.buy(t, h.org, "usd", 4321, start.Add(24*time.Hour), false) // unpaid: pending
	w.buy(t, h.org, "eur", 900, start.Add(3*24*time.Hour), true) // another currency
	w.buy(t, w.orgB, "usd", 777, start.Add(-time.Hour), true)    // before every window below
	w.payAll(t)
	w.reverse(t, creatorA, 101)

	from, to := start.Add(2*24*time.Hour), now.Add(time.Hour) // purchases of the last 8 days, payouts of now
	for _, tt := range []struct {
		name     string
		org      uuid.UUID
		accounts []string
	}{
		{"platform", uuid.Nil, []string{"acct_world0", "acct_world1", "acct_world2"}},
		{"organization A", h.org, []string{"acct_world0", "acct_world1"}}, // itself and its creator
		{"organization B", w.orgB, []string{"acct_world2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want := w.expected("usd", from, to, tt.org)
			want.PaidOut = w.transferred("usd", tt.accounts...)
			if want.Purchases == 0 || want.PaidOut == 0 {
				t.Fatalf("the scenario made nothing to report: %+v", want)
			}
			if got := h.report(t, "usd", from, to, tt.org); got != want {
				t.Fatalf("report\n got  %+v\n want %+v", got, want)
			}
		})
	}
	// Every sale, and eur alone.
	if got, want := h.report(t, "usd", start.Add(-2*time.Hour), to, uuid.Nil), w.expected("usd", start.Add(-2*time.Hour), to, uuid.Nil); got.Gross != want.Gross ||
		got.Purchases != want.Purchases || got.Refunded != want.Refunded || got.Disputed != want.Disputed {
		t.Fatalf("all usd: got %+v, want %+v", got, want)
	}
	if got := h.report(t, "eur", from, to, uuid.Nil); got.Purchases != 1 || got.Gross != 900 || got.PaidOut != w.transferred("eur", "acct_world0", "acct_world1") ||
		got.PaidOut == 0 {
		t.Fatalf("eur: %+v", got)
	}
	// A window of no purchases and no payouts.
	if got := h.report(t, "usd", start.Add(-48*time.Hour), start.Add(-24*time.Hour), uuid.Nil); got != (report{}) {
		t.Fatalf("empty window: %+v", got)
	}
}

// The report's query is refused when it is not a window, a currency and
// optionally an organization.
func TestRevenueReportRefusesBadQueries(t *testing.T) {
	h := newHarness(t, nil)
	for q, field := range map[string]string{
		"currency=usd&to=2026-12-01T00:00:00Z":                                                "from",
		"currency=usd&from=2026-12-01T00:00:00Z":                                              "to",
		"currency=usd&from=yesterday&to=2026-12-01T00:00:00Z":                                 "from",
		"currency=usd&from=2026-12-01T00:00:00Z&to=2026-12-01T00:00:00Z":                      "to",
		"currency=USD&from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z":                      "currency",
		"from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z":                                   "currency",
		"currency=usd&from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z&organization_id=acme": "organization_id",
		"currency=usd&from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z&x=%zz":                "query",
	} {
		r := h.call(http.MethodGet, "/v1/reports/revenue?"+q, keyA, nil)
		fields, _ := r.Body["error"].(map[string]any)["fields"].(map[string]any)
		if r.Status != http.StatusBadRequest || r.errCode() != api.CodeInvalidRequest || fields[field] == nil {
			t.Errorf("%s: %d %s, want 400 naming %s", q, r.Status, r.Raw, field)
		}
	}
	if r := h.call(http.MethodGet, "/v1/reports/revenue?currency=usd&from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z", "", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("no key: %d", r.Status)
	}
}
