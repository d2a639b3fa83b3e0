package loadgen

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// ledgerRow is one entry of a baseline sale's posting: the account it moves
// (owner, currency, kind) and the signed amount.
type ledgerRow struct {
	owner, currency, kind string
	amount                int64
}

// ledgerRows is the posting of one sale of pur, as the ledger's
// PurchaseCompleted writes it: the amount leaves the platform's
// stripe_clearing, each party's non-zero share goes to its pending account.
// The rows are in the ledger's lock order (owner, currency, kind as bytes),
// so the baseline locks the accounts as the processor does.
func ledgerRows(pur Purchase) []ledgerRow {
	rows := []ledgerRow{
		{"platform", pur.Currency, "stripe_clearing", -pur.Amount},
		{"platform", pur.Currency, "pending", pur.PlatformFee},
		{"organization:" + pur.OrganizationID.String(), pur.Currency, "pending", pur.OrgFee},
		{"creator:" + pur.CreatorID, pur.Currency, "pending", pur.Creator},
	}
	rows = slices.DeleteFunc(rows, func(r ledgerRow) bool { return r.amount == 0 })
	slices.SortFunc(rows, func(a, b ledgerRow) int {
		if c := strings.Compare(a.owner, b.owner); c != 0 {
			return c
		}
		if c := strings.Compare(a.currency, b.currency); c != 0 {
			return c
		}
		return strings.Compare(a.kind, b.kind)
	})
	return rows
}

// posting names a sale's ledger transaction: a purchase's or a paid
// invoice's (exactly one of the two ids set).
type posting struct {
	purchase *uuid.UUID
	invoice  *string
	amount   int64
	at       time.Time
}

// baselinePosting writes the sale posting of p with the two statements
// ledger.PostMany sends for one transaction: the transaction, then the
// accounts (created or updated, locked in order) with the entries and the
// balance and version each leaves, in one statement, so the accounts' row
// locks are taken right before the commit as the processor takes them.
// Each account appears once in a sale's posting, so an entry's balance and
// version are its account's after the update.
func baselinePosting(ctx context.Context, tx bun.Tx, p posting, rows []ledgerRow) error {
	key, cause := "", "purchase"
	if p.purchase != nil {
		key = "purchase:" + p.purchase.String()
	} else if p.invoice != nil {
		key, cause = "invoice:"+*p.invoice, "invoice"
	}
	var txID int64
	if err := tx.NewRaw(`INSERT INTO ledger_transactions (idempotency_key, cause, purchase_id, invoice_id, amount_cents, effective_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`, key, cause, p.purchase, p.invoice, p.amount, p.at).Scan(ctx, &txID); err != nil {
		return fmt.Errorf("ledger transaction: %w", err)
	}
	n := len(rows)
	owners, currencies, kinds, deltas := make([]string, n), make([]string, n), make([]string, n), make([]int64, n)
	for i, r := range rows {
		owners[i], currencies[i], kinds[i], deltas[i] = r.owner, r.currency, r.kind, r.amount
	}
	res, err := tx.NewRaw(`WITH v AS (
		SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::bigint[]) WITH ORDINALITY AS v(o, c, k, d, ord)),
	a AS (
		INSERT INTO ledger_accounts AS a (owner, currency, kind, balance, version)
		SELECT o, c, k, d, 1 FROM v ORDER BY ord
		ON CONFLICT (owner, currency, kind) DO UPDATE SET balance = a.balance + EXCLUDED.balance, version = a.version + 1, updated_at = now()
		RETURNING a.id, a.owner, a.currency, a.kind, a.balance, a.version)
	INSERT INTO ledger_entries (transaction_id, account_id, amount, balance_after, account_version)
	SELECT ?, a.id, v.d, a.balance, a.version FROM v JOIN a ON a.owner = v.o AND a.currency = v.c AND a.kind = v.k ORDER BY v.ord`,
		pgdialect.Array(owners), pgdialect.Array(currencies), pgdialect.Array(kinds), pgdialect.Array(deltas), txID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("ledger accounts and entries: %w", err)
	}
	if got, err := res.RowsAffected(); err != nil || got != int64(n) {
		return fmt.Errorf("ledger entries: %d written for %d (%v)", got, n, err)
	}
	return nil
}
