package api_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/model"
)

// readWorld is a world with a few fixed sales, posted, released and paid,
// and one reversal.
func readWorld(t *testing.T) (*harness, *world) {
	t.Helper()
	h := newHarness(t, func(c *api.Config) { c.RateLimit = 0 })
	w := newWorld(t, h)
	at := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Second)
	for k, amount := range []int64{2999, 1500, 800, 4200, 999} {
		i := w.buy(t, h.org, "usd", amount, at.Add(time.Duration(k)*time.Hour), true)
		switch k {
		case 1:
			w.refund(t, i, 500)
		case 3:
			w.dispute(t, i, 4200, "won")
		}
	}
	w.buy(t, h.org, "eur", 900, at, true)
	w.buy(t, w.orgB, "usd", 1000, at, true)
	return h, w
}

// A payee is answered from its row and its stored balances, which are the
// ledger's; a payee that earned before onboarding has no account yet; one
// with neither is 404.
func TestPayeeBalances(t *testing.T) {
	h, w := readWorld(t)
	if _, err := ledger.Backfill(context.Background(), h.db, 100); err != nil {
		t.Fatal(err)
	}
	// Earned, not onboarded: balances, no account.
	r := h.call(http.MethodGet, "/v1/payees/creator/"+creatorB, keyA, nil)
	if r.Status != http.StatusOK || r.Body["stripe_account_id"] != nil || r.Body["payouts_enabled"] != false {
		t.Fatalf("not onboarded: %d %s", r.Status, r.Raw)
	}
	if got := r.Body["balances"].([]any); len(got) != 1 || got[0].(map[string]any)["pending"].(float64) != 900 {
		t.Fatalf("creator B balances %v, want 900 pending of its 1000 usd sale", got)
	}
	w.payAll(t)
	w.reverse(t, creatorA, 50)
	for _, ref := range []struct{ kind, id, owner string }{
		{"creator", creatorA, ledger.CreatorOwner(creatorA)},
		{"organization", h.org.String(), ledger.OrganizationOwner(h.org)},
	} {
		r := h.call(http.MethodGet, "/v1/payees/"+ref.kind+"/"+ref.id, keyB, nil)
		if r.Status != http.StatusOK || r.Body["object"] != "payee" || r.Body["kind"] != ref.kind || r.Body["id"] != ref.id ||
			r.Body["payouts_enabled"] != true || r.Body["stripe_account_id"] == nil || r.Body["payouts_blocked_reason"] != nil {
			t.Fatalf("%s: %d %s", ref.owner, r.Status, r.Raw)
		}
		want := map[string]map[string]float64{}
		var accounts []model.LedgerAccount
		if err := h.db.NewSelect().Model(&accounts).Where("owner = ?", ref.owner).Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, a := range accounts {
			if want[a.Currency] == nil {
				want[a.Currency] = map[string]float64{"pending": 0, "available": 0, "disputed": 0, "in_transit": 0, "paid_out": 0}
			}
			want[a.Currency][a.Kind] = float64(a.Balance)
		}
		got := map[string]map[string]float64{}
		var currencies []string
		for _, b := range r.Body["balances"].([]any) {
			m := b.(map[string]any)
			c := m["currency"].(string)
			currencies = append(currencies, c)
			got[c] = map[string]float64{}
			for _, k := range []string{"pending", "available", "disputed", "in_transit", "paid_out"} {
				got[c][k] = m[k].(float64)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || !slices.IsSorted(currencies) || len(currencies) != 2 {
			t.Fatalf("%s balances\n got  %v\n want %v", ref.owner, got, want)
		}
		if got["usd"]["paid_out"] <= 0 {
			t.Fatalf("%s paid nothing in usd: %v", ref.owner, got)
		}
	}
	// Onboarded, never earned: 200 with no balances.
	h.insert(&model.Payee{Kind: model.PayeeCreator, ID: "fresh", RequirementsDue: model.JSON(`["external_account"]`)})
	r = h.call(http.MethodGet, "/v1/payees/creator/fresh", keyA, nil)
	if r.Status != http.StatusOK || len(r.Body["balances"].([]any)) != 0 || fmt.Sprint(r.Body["requirements_due"]) != "[external_account]" {
		t.Fatalf("fresh payee: %d %s", r.Status, r.Raw)
	}
	for _, path := range []string{"/v1/payees/creator/nobody", "/v1/payees/creator/nobody/ledger", "/v1/payees/creator/nobody/payouts",
		"/v1/payees/organization/" + uuid.NewString()} {
		if r := h.call(http.MethodGet, path, keyA, nil); r.Status != http.StatusNotFound || r.errCode() != api.CodeNotFound {
			t.Errorf("%s: %d %s, want 404", path, r.Status, r.Raw)
		}
	}
	for _, path := range []string{"/v1/payees/creator/fresh/ledger", "/v1/payees/creator/fresh/payouts"} {
		if r := h.call(http.MethodGet, path, keyA, nil); r.Status != http.StatusOK || len(r.Body["data"].([]any)) != 0 || r.Body["has_more"] != false {
			t.Errorf("%s: %d %s, want an empty page", path, r.Status, r.Raw)
		}
	}
}

// page walks a list route with limit, following starting_after, and
// returns every item.
func (h *harness) page(t *testing.T, path string, q url.Values, limit int) []map[string]any {
	t.Helper()
	var all []map[string]any
	q = url.Values(maps.Clone(q))
	q.Set("limit", strconv.Itoa(limit))
	for range 1000 {
		r := h.call(http.MethodGet, path+"?"+q.Encode(), keyA, nil)
		if r.Status != http.StatusOK || r.Body["object"] != "list" {
			t.Fatalf("%s?%s: %d %s", path, q.Encode(), r.Status, r.Raw)
		}
		data := r.Body["data"].([]any)
		if len(data) > limit {
			t.Fatalf("%d items on a page of %d", len(data), limit)
		}
		for _, d := range data {
			all = append(all, d.(map[string]any))
		}
		if r.Body["has_more"] != true {
			return all
		}
		last := all[len(all)-1]["id"]
		if f, ok := last.(float64); ok {
			q.Set("starting_after", strconv.FormatInt(int64(f), 10))
		} else {
			q.Set("starting_after", last.(string))
		}
	}
	t.Fatal("the pages never end")
	return nil
}

// A payee's ledger entries and payouts come newest first in cursor pages
// that together are exactly its rows, optionally of one currency.
func TestPayeeLedgerAndPayoutPages(t *testing.T) {
	h, w := readWorld(t)
	w.payAll(t)
	w.reverse(t, creatorA, 50)
	owner := ledger.CreatorOwner(creatorA)
	for _, currency := range []string{"", "usd", "eur"} {
		var want []int64
		q := h.db.NewSelect().Table("ledger_entries").Column("ledger_entries.id").
			Join("JOIN ledger_accounts a ON a.id = ledger_entries.account_id").Where("a.owner = ?", owner)
		if currency != "" {
			q = q.Where("a.currency = ?", currency)
		}
		if err := q.OrderExpr("ledger_entries.id DESC").Scan(context.Background(), &want); err != nil {
			t.Fatal(err)
		}
		v := url.Values{}
		if currency != "" {
			v.Set("currency", currency)
		}
		for _, limit := range []int{1, 3, 100} {
			entries := h.page(t, "/v1/payees/creator/"+creatorA+"/ledger", v, limit)
			var got []int64
			sums := map[string]float64{}
			for _, e := range entries {
				got = append(got, int64(e["id"].(float64)))
				if e["object"] != "ledger_entry" || (currency != "" && e["currency"] != currency) || e["cause"] == "" {
					t.Fatalf("entry %v", e)
				}
				sums[e["currency"].(string)+"/"+e["account"].(string)] += e["amount"].(float64)
			}
			if !slices.Equal(got, want) || len(want) < 4 {
				t.Fatalf("currency %q limit %d: entries %v, want %v", currency, limit, got, want)
			}
			// Newest first: each account's first entry listed holds its balance.
			for key, sum := range sums {
				for _, e := range entries {
					if e["currency"].(string)+"/"+e["account"].(string) == key {
						if e["balance_after"].(float64) != sum {
							t.Fatalf("%s: newest balance_after %v, entries sum to %v", key, e["balance_after"], sum)
						}
						break
					}
				}
			}
		}
	}
	var wantPayouts []string
	if err := h.db.NewSelect().Table("payouts").Column("id").Where("payee_kind = 'creator' AND payee_id = ?", creatorA).
		OrderExpr("created_at DESC, id DESC").Scan(context.Background(), &wantPayouts); err != nil {
		t.Fatal(err)
	}
	ps := h.page(t, "/v1/payees/creator/"+creatorA+"/payouts", url.Values{}, 1)
	var got []string
	reversed := 0.0
	for _, p := range ps {
		got = append(got, p["id"].(string))
		if p["object"] != "payout" || p["status"] != "paid" || p["stripe_transfer_id"] == nil {
			t.Fatalf("payout %v", p)
		}
		reversed += p["amount_reversed_cents"].(float64)
	}
	if !slices.Equal(got, wantPayouts) || len(got) != 2 || reversed != 50 {
		t.Fatalf("payouts %v (reversed %v), want %v (one per currency, 50 reversed)", got, reversed, wantPayouts)
	}
	// Cursors of another payee, or not ids, are the caller's 400.
	var otherEntry int64
	if err := h.db.NewRaw(`SELECT e.id FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id WHERE a.owner = ? LIMIT 1`,
		ledger.OrganizationOwner(h.org)).Scan(context.Background(), &otherEntry); err != nil {
		t.Fatal(err)
	}
	for path, field := range map[string]string{
		"/ledger?starting_after=" + strconv.FormatInt(otherEntry, 10): "starting_after",
		"/ledger?starting_after=abc":                                  "starting_after",
		"/ledger?currency=USD":                                        "currency",
		"/ledger?limit=0":                                             "limit",
		"/payouts?starting_after=" + uuid.NewString():                 "starting_after",
		"/payouts?starting_after=tr_1":                                "starting_after",
		"/payouts?limit=101":                                          "limit",
	} {
		r := h.call(http.MethodGet, "/v1/payees/creator/"+creatorA+path, keyA, nil)
		fields, _ := r.Body["error"].(map[string]any)["fields"].(map[string]any)
		if r.Status != http.StatusBadRequest || fields[field] == nil {
			t.Errorf("%s: %d %s, want 400 naming %s", path, r.Status, r.Raw, field)
		}
	}
	for _, path := range []string{"/v1/payees/team/x", "/v1/payees/creator/%00/ledger", "/v1/payees/organization/x/payouts"} {
		if r := h.call(http.MethodGet, path, keyA, nil); r.Status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", path, r.Status)
		}
	}
}
