package api_test

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/model"
)

// planNode is a node of EXPLAIN (ANALYZE, FORMAT JSON).
type planNode struct {
	NodeType     string     `json:"Node Type"`
	RelationName string     `json:"Relation Name"`
	IndexName    string     `json:"Index Name"`
	ActualRows   float64    `json:"Actual Rows"`
	ActualLoops  float64    `json:"Actual Loops"`
	Plans        []planNode `json:"Plans"`
}

// explain runs query with args under EXPLAIN ANALYZE and returns every
// node of its plan.
func explain(t *testing.T, h *harness, query string, args ...any) []planNode {
	t.Helper()
	var raw string
	if err := h.db.DB.QueryRowContext(context.Background(), "EXPLAIN (ANALYZE, FORMAT JSON) "+query, args...).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var doc []struct{ Plan planNode }
	if err := json.Unmarshal([]byte(raw), &doc); err != nil || len(doc) != 1 {
		t.Fatalf("plan %s: %v", raw, err)
	}
	var nodes []planNode
	var walk func(n planNode)
	walk = func(n planNode) {
		nodes = append(nodes, n)
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(doc[0].Plan)
	return nodes
}

// The payee routes read a payee's balances and a page of its ledger
// without reading its history: with 70 000 entries (50 000 of them the
// payee's) and 20 000 other accounts, the balances come from the stored
// balances through the accounts' unique index and touch no entry, and a
// ledger page reads at most limit + 3 entries of each of the payee's
// accounts, all through index conditions, on the first page and deep in
// the history. The load is analyzed but not vacuumed, as a table is right
// after a backfill: no plan may rest on index-only scans.
func TestPayeeReadsQueryPlans(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 70 000 ledger entries")
	}
	h := newHarness(t, nil)
	ctx := context.Background()
	p := h.purchase("bulk_buyer", model.PurchaseCompleted, time.Now())
	const (
		owner      = "creator:big"
		ownEntries = 50_000
		others     = 4_000 // owners of five accounts with one entry each
	)
	start := time.Now()
	load := []string{
		`INSERT INTO ledger_transactions (idempotency_key, cause, purchase_id, amount_cents, effective_at)
		 VALUES ('purchase:` + p.ID.String() + `', 'purchase', '` + p.ID.String() + `', 1, now())`,
		`INSERT INTO ledger_accounts (owner, currency, kind)
		 SELECT o, 'usd', k FROM (SELECT '` + owner + `' AS o UNION ALL SELECT 'creator:other' || g FROM generate_series(1, ` + itoa(others) + `) g) owners,
		      unnest(ARRAY['pending', 'available', 'disputed', 'in_transit', 'paid_out']) k`,
		// Entries alternate +1 / -1 so the one transaction they share sums
		// to zero, as the deferred trigger demands at commit.
		`INSERT INTO ledger_entries (transaction_id, account_id, amount, balance_after, account_version)
		 SELECT (SELECT id FROM ledger_transactions LIMIT 1), a.id, CASE WHEN g % 2 = 0 THEN 1 ELSE -1 END, 0, (g - 1) / 5 + 1
		 FROM generate_series(1, ` + itoa(ownEntries) + `) g
		 JOIN ledger_accounts a ON a.owner = '` + owner + `'
		  AND a.kind = (ARRAY['pending', 'available', 'disputed', 'in_transit', 'paid_out'])[(g - 1) % 5 + 1]`,
		`INSERT INTO ledger_entries (transaction_id, account_id, amount, balance_after, account_version)
		 SELECT (SELECT id FROM ledger_transactions LIMIT 1), a.id, CASE WHEN a.id % 2 = 0 THEN 1 ELSE -1 END, 0, 1
		 FROM ledger_accounts a WHERE a.owner <> '` + owner + `'`,
		`UPDATE ledger_accounts SET version = ` + itoa(ownEntries/5) + ` WHERE owner = '` + owner + `'`,
		`ANALYZE ledger_accounts`, `ANALYZE ledger_entries`, `ANALYZE ledger_transactions`,
	}
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range load[:5] {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			t.Fatalf("load: %v\n%s", err, q)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("load commit: %v", err)
	}
	for _, q := range load[5:] {
		if _, err := h.db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("loaded in %s", time.Since(start).Round(time.Millisecond))

	// Balances: the accounts' unique index, no entry read.
	nodes := explain(t, h, api.PayeeBalancesQuery, owner)
	usesIndex := false
	for _, n := range nodes {
		if n.RelationName == "ledger_entries" {
			t.Fatalf("the balances read ledger_entries: %+v", nodes)
		}
		usesIndex = usesIndex || n.IndexName == "ledger_accounts_owner_currency_kind_key"
	}
	if !usesIndex || nodes[0].ActualRows != 5 {
		t.Fatalf("the balances do not read the payee's 5 accounts through their unique index: %+v", nodes)
	}

	// Ledger pages: the first, and one deep in the history.
	const limit = 10
	var deep int64
	if err := h.db.DB.QueryRowContext(ctx, `SELECT e.id FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
		WHERE a.owner = $1 ORDER BY e.id LIMIT 1 OFFSET 1000`, owner).Scan(&deep); err != nil {
		t.Fatal(err)
	}
	for _, cursor := range []int64{math.MaxInt64, deep} {
		nodes := explain(t, h, api.PayeeLedgerQuery, owner, "", cursor, limit+1)
		var read float64
		for _, n := range nodes {
			if n.RelationName != "ledger_entries" {
				continue
			}
			if !strings.HasPrefix(n.NodeType, "Index") {
				t.Fatalf("cursor %d: ledger_entries read by %s, not by an index condition: %+v", cursor, n.NodeType, nodes)
			}
			read += n.ActualRows * n.ActualLoops
		}
		// Per account: the probe for the newest entry below the cursor,
		// that entry, and the page's range of versions.
		if read == 0 || read > 5*(limit+3) {
			t.Fatalf("cursor %d: a page of %d read %v entries, want at most %d (limit + 3 per account)", cursor, limit, read, 5*(limit+3))
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
