package purchase_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/model"
)

// verifyLedger fails the test on any difference ledger.Verify finds: every
// paid purchase posted, its postings its split minus what was given back,
// matching its row's refunds and dispute; nothing posted for an unpaid one.
// Every env checks it when its test ends (newEnvOn).
func (e *env) verifyLedger() {
	e.t.Helper()
	d, err := ledger.Verify(context.Background(), e.db)
	if err != nil {
		e.t.Fatal(err)
	}
	if d != nil {
		e.t.Error(d)
	}
}

// postingRow is one entry of a purchase's postings.
type postingRow struct {
	Key    string `bun:"idempotency_key"`
	Owner  string `bun:"owner"`
	Kind   string `bun:"kind"`
	Amount int64  `bun:"amount"`
}

// ledgerOf returns p's postings: their keys in posting order, and what they
// leave on each account, named role/kind (role: creator, organization or
// platform, checked to be p's own), zero sums left out.
func (e *env) ledgerOf(p model.Purchase) ([]string, map[string]int64) {
	e.t.Helper()
	var rows []postingRow
	err := e.db.NewRaw(`SELECT t.idempotency_key, coalesce(a.owner, '') AS owner, coalesce(a.kind, '') AS kind, coalesce(e.amount, 0) AS amount
		FROM ledger_transactions t
		LEFT JOIN ledger_entries e ON e.transaction_id = t.id
		LEFT JOIN ledger_accounts a ON a.id = e.account_id
		WHERE t.purchase_id = ? ORDER BY t.id, e.id`, p.ID).Scan(context.Background(), &rows)
	if err != nil {
		e.t.Fatal(err)
	}
	var keys []string
	sums := map[string]int64{}
	for _, r := range rows {
		k := strings.Replace(r.Key, p.ID.String(), "P", 1)
		if len(keys) == 0 || keys[len(keys)-1] != k {
			keys = append(keys, k)
		}
		if r.Owner == "" {
			continue
		}
		role := map[string]string{ledger.PlatformOwner: "platform", ledger.CreatorOwner(p.CreatorID): "creator",
			ledger.OrganizationOwner(p.OrganizationID): "organization"}[r.Owner]
		if role == "" {
			e.t.Fatalf("purchase %s posts to %s, not one of its parties", p.ID, r.Owner)
		}
		sums[role+"/"+r.Kind] += r.Amount
	}
	maps.DeleteFunc(sums, func(_ string, v int64) bool { return v == 0 })
	return keys, sums
}

// wantLedger fails the test unless p's postings have keys and sums.
func (e *env) wantLedger(p model.Purchase, keys []string, sums map[string]int64) {
	e.t.Helper()
	gotKeys, gotSums := e.ledgerOf(p)
	if !slices.Equal(gotKeys, keys) {
		e.t.Errorf("ledger keys of %s = %q, want %q", p.StripeCheckoutSessionID, gotKeys, keys)
	}
	if !maps.Equal(gotSums, sums) {
		e.t.Errorf("ledger of %s = %s, want %s", p.StripeCheckoutSessionID, sumsText(gotSums), sumsText(sums))
	}
}

// partyTotals sums ledgerOf's role/kind sums per role.
func partyTotals(sums map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range sums {
		role, _, _ := strings.Cut(k, "/")
		if k == "platform/stripe_clearing" {
			role = "stripe_clearing"
		}
		out[role] += v
	}
	maps.DeleteFunc(out, func(_ string, v int64) bool { return v == 0 })
	return out
}

func sumsText(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func uuidV7(t *testing.T) uuid.UUID {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return id
}
