package ledger

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/paystream/paystream/internal/db"
)

// The database refuses an unbalanced transaction at commit, whatever writes
// it: these insert entries with SQL, bypassing Post and its checks.
func TestDeferredTriggerRefusesUnbalanced(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 1, 1)
	ps := w.addPurchases(t, rand.New(rand.NewPCG(1, 1)), 6, "usd")
	if _, err := w.db.ExecContext(ctx, `INSERT INTO ledger_accounts (owner, currency, kind) VALUES
		('platform', 'usd', 'stripe_clearing'), ('creator:cr_1', 'usd', 'pending'),
		('platform', 'eur', 'stripe_clearing'), ('creator:cr_1', 'eur', 'pending')`); err != nil {
		t.Fatal(err)
	}
	acct := func(cur, owner string) string {
		return `(SELECT id FROM ledger_accounts WHERE owner = '` + owner + `' AND currency = '` + cur + `' AND kind = ` +
			map[bool]string{true: `'stripe_clearing'`, false: `'pending'`}[owner == "platform"] + `)`
	}
	// Each case writes one transaction for purchase i with the given entries
	// (currency, owner, amount, version), one statement per entry.
	type entry struct {
		cur, owner string
		amount     int64
	}
	tests := []struct {
		name    string
		entries []entry
		ok      bool
	}{
		{"balanced, in two statements", []entry{{"usd", "platform", -100}, {"usd", "creator:cr_1", 100}}, true},
		{"off by one cent", []entry{{"usd", "platform", -100}, {"usd", "creator:cr_1", 99}}, false},
		{"a single entry", []entry{{"usd", "creator:cr_1", 100}}, false},
		{"zero overall but not per currency", []entry{{"usd", "platform", -100}, {"eur", "creator:cr_1", 100}}, false},
		{"balanced in two currencies", []entry{{"usd", "platform", -100}, {"usd", "creator:cr_1", 100},
			{"eur", "platform", -7}, {"eur", "creator:cr_1", 7}}, true},
	}
	versions := map[string]int64{}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := w.db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback() //nolint:errcheck // after a failed commit there is nothing to roll back
			id := ps[i].row.ID.String()
			if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_transactions (idempotency_key, cause, purchase_id, amount_cents, effective_at)
				VALUES ('purchase:`+id+`', 'purchase', '`+id+`', 0, now())`); err != nil {
				t.Fatal(err)
			}
			local := map[string]int64{}
			for _, e := range tt.entries {
				k := e.cur + e.owner
				local[k]++
				if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_entries (transaction_id, account_id, amount, balance_after, account_version)
					SELECT id, `+acct(e.cur, e.owner)+`, ?, 0, ? FROM ledger_transactions WHERE idempotency_key = 'purchase:`+id+`'`,
					e.amount, versions[k]+local[k]); err != nil {
					t.Fatalf("insert entry: %v (the check must wait for the commit)", err)
				}
			}
			err = tx.Commit()
			if tt.ok {
				if err != nil {
					t.Fatalf("commit of a balanced transaction: %v", err)
				}
				for k, n := range local {
					versions[k] += n
				}
				return
			}
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != db.CheckViolation || pe.ConstraintName != "ledger_entries_balanced" {
				t.Fatalf("commit = %v, want a check violation of ledger_entries_balanced", err)
			}
			var n int
			if err := w.db.NewRaw(`SELECT count(*) FROM ledger_transactions WHERE purchase_id = ?`, ps[i].row.ID).Scan(ctx, &n); err != nil || n != 0 {
				t.Fatalf("the refused transaction left %d rows (%v)", n, err)
			}
		})
	}
}

// The schema refuses what the ledger, payees and payouts must never hold.
func TestLedgerSchemaConstraints(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 1, 1)
	ps := w.addPurchases(t, rand.New(rand.NewPCG(2, 2)), 1, "usd")
	if _, err := PostMany(ctx, w.db, []Transaction{must(PurchaseCompleted(ps[0].sale))}); err != nil {
		t.Fatal(err)
	}
	pid := ps[0].row.ID.String()
	setup := []string{
		`INSERT INTO payees (kind, id, stripe_account_id) VALUES ('creator', 'cr_1', 'acct_1')`,
		`INSERT INTO payouts (id, payee_kind, payee_id, currency, amount_cents, transfer_group)
		 VALUES ('00000000-0000-7000-8000-0000000000f1', 'creator', 'cr_1', 'usd', 100, 'payout:00000000-0000-7000-8000-0000000000f1')`,
	}
	for _, q := range setup {
		if _, err := w.db.ExecContext(ctx, q); err != nil {
			t.Fatalf("setup %q: %v", q, err)
		}
	}
	payout := func(amount, status, extra, extraVals string) string {
		return `INSERT INTO payouts (id, payee_kind, payee_id, currency, amount_cents, status, transfer_group` + extra + `)
		 VALUES ('00000000-0000-7000-8000-0000000000f2', 'creator', 'cr_1', 'usd', ` + amount + `, '` + status + `',
		 'payout:00000000-0000-7000-8000-0000000000f2'` + extraVals + `)`
	}
	tx := func(key, cause, subject string) string {
		return `INSERT INTO ledger_transactions (idempotency_key, cause, purchase_id, amount_cents, effective_at)
		 VALUES ('` + key + `', '` + cause + `', ` + subject + `, 0, now())`
	}
	tests := []struct {
		name, query, state string
	}{
		{"payee of an unknown kind", `INSERT INTO payees (kind, id) VALUES ('platform', 'x')`, db.CheckViolation},
		{"organization payee id not a uuid", `INSERT INTO payees (kind, id) VALUES ('organization', 'org_1')`, db.CheckViolation},
		{"two payees on one Stripe account", `INSERT INTO payees (kind, id, stripe_account_id) VALUES ('creator', 'cr_2', 'acct_1')`, db.UniqueViolation},
		{"requirements not an array", `INSERT INTO payees (kind, id, requirements_due) VALUES ('creator', 'cr_3', '{}')`, db.CheckViolation},
		{"payout of nothing", payout("0", "pending", "", ""), db.CheckViolation},
		{"payout of a negative amount", payout("-5", "pending", "", ""), db.CheckViolation},
		{"unknown payout status", payout("100", "sent", "", ""), db.CheckViolation},
		{"paid without transfer", payout("100", "paid", ", paid_at", ", now()"), db.CheckViolation},
		{"reversed more than paid", payout("100", "paid", ", paid_at, stripe_transfer_id, amount_reversed_cents", ", now(), 'tr_1', 101"), db.CheckViolation},
		{"transfer group of another payout", `INSERT INTO payouts (id, payee_kind, payee_id, currency, amount_cents, transfer_group)
			VALUES ('00000000-0000-7000-8000-0000000000f3', 'creator', 'cr_1', 'usd', 1, 'payout:x')`, db.CheckViolation},
		{"payout to no payee", `INSERT INTO payouts (id, payee_kind, payee_id, currency, amount_cents, transfer_group)
			VALUES ('00000000-0000-7000-8000-0000000000f4', 'creator', 'cr_9', 'usd', 1, 'payout:00000000-0000-7000-8000-0000000000f4')`, db.ForeignKeyViolation},
		{"account of a bad owner", `INSERT INTO ledger_accounts (owner, currency, kind) VALUES ('organization:42', 'usd', 'pending')`, db.CheckViolation},
		{"platform available", `INSERT INTO ledger_accounts (owner, currency, kind) VALUES ('platform', 'usd', 'available')`, db.CheckViolation},
		{"payee revenue", `INSERT INTO ledger_accounts (owner, currency, kind) VALUES ('creator:cr_1', 'usd', 'revenue')`, db.CheckViolation},
		{"second account of a kind", `INSERT INTO ledger_accounts (owner, currency, kind) VALUES ('creator:cr_1', 'chf', 'paid_out'), ('creator:cr_1', 'chf', 'paid_out')`, db.UniqueViolation},
		{"second sale posting", tx("purchase:"+pid, "purchase", "'"+pid+"'"), db.UniqueViolation},
		{"key not of its cause", tx("release:x", "release", "'"+pid+"'"), db.CheckViolation},
		{"purchase cause about no purchase", tx("purchase:", "purchase", "NULL"), db.CheckViolation},
		{"zero entry", `INSERT INTO ledger_entries (transaction_id, account_id, amount, balance_after, account_version)
			SELECT t.id, a.id, 0, 0, 99 FROM ledger_transactions t, ledger_accounts a LIMIT 1`, db.CheckViolation},
		{"two entries with one account version", `INSERT INTO ledger_entries (transaction_id, account_id, amount, balance_after, account_version)
			SELECT e.transaction_id, e.account_id, 1, 0, e.account_version FROM ledger_entries e LIMIT 1`, db.UniqueViolation},
		{"editing an entry", `UPDATE ledger_entries SET amount = amount + 1`, db.CheckViolation},
		{"deleting a transaction", `DELETE FROM ledger_transactions`, db.CheckViolation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := w.db.ExecContext(ctx, tt.query)
			if got := db.SQLState(err); got != tt.state {
				t.Fatalf("SQLSTATE = %q (%v), want %s", got, err, tt.state)
			}
		})
	}
}

func must(t Transaction, err error) Transaction {
	if err != nil {
		panic(err)
	}
	return t
}
