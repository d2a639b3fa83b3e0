package api

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/model"
)

// PayeeBalancesQuery reads a payee's stored balances: one row per ledger
// account of the owner ($1), through the unique (owner, currency, kind)
// index. The ledger keeps each account's balance with every posting, so
// the answer never sums entries, however many there are. Exported so the
// query-plan test and benchmarks run the very same SQL.
const PayeeBalancesQuery = `SELECT currency, kind, balance FROM ledger_accounts WHERE owner = $1 ORDER BY currency, kind`

// PayeeLedgerQuery reads one page of a payee's ledger entries, newest
// (highest id) first, of the owner's ($1) accounts, optionally of one
// currency ($2, empty for all), below the cursor entry id ($3), $4 of
// them. Per account it finds the newest entry below the cursor with one
// probe of (account_id, id) (max, which Postgres answers from the index's
// end), then takes the $4 versions up to that entry's through the unique
// (account_id, account_version) index: an account's versions are dense
// (1…n) and follow its entry ids (entries of an account are written under
// its row lock, one posting after the other), so these are the account's
// $4 newest entries below the cursor. Every step is bounded by an index
// condition, so a page reads at most $4 + 2 entries per account whatever
// the planner's estimate of an account's size, and never the payee's
// history.
const PayeeLedgerQuery = `SELECT e.id, a.currency, a.kind, e.amount, e.balance_after,
	t.cause, t.purchase_id, t.payout_id, t.reference, t.effective_at, t.created_at
FROM ledger_accounts a
CROSS JOIN LATERAL (SELECT max(le.id) AS id FROM ledger_entries le WHERE le.account_id = a.id AND le.id < $3) top
JOIN ledger_entries newest ON newest.id = top.id
JOIN ledger_entries e ON e.account_id = a.id
	AND e.account_version > newest.account_version - $4 AND e.account_version <= newest.account_version
JOIN ledger_transactions t ON t.id = e.transaction_id
WHERE a.owner = $1 AND ($2 = '' OR a.currency = $2)
ORDER BY e.id DESC
LIMIT $4`

// accountBalance is one row of PayeeBalancesQuery.
type accountBalance struct {
	Currency, Kind string
	Balance        int64
}

// loadPayee returns the payee's row (nil when it has none) and its stored
// balances.
func loadPayee(ctx context.Context, bdb *bun.DB, ref payeeRef) (*model.Payee, []accountBalance, error) {
	var p model.Payee
	err := bdb.NewSelect().Model(&p).Where("kind = ? AND id = ?", ref.Kind, ref.ID).Scan(ctx)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		err = nil
	case err != nil:
		return nil, nil, fmt.Errorf("load payee %s: %w", ref.Owner, err)
	}
	rows, err := bdb.DB.QueryContext(ctx, PayeeBalancesQuery, ref.Owner)
	if err != nil {
		return nil, nil, fmt.Errorf("load balances of %s: %w", ref.Owner, err)
	}
	defer rows.Close()
	var bs []accountBalance
	for rows.Next() {
		var b accountBalance
		if err := rows.Scan(&b.Currency, &b.Kind, &b.Balance); err != nil {
			return nil, nil, fmt.Errorf("read balances of %s: %w", ref.Owner, err)
		}
		bs = append(bs, b)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read balances of %s: %w", ref.Owner, err)
	}
	if p.Kind == "" {
		return nil, bs, nil
	}
	return &p, bs, nil
}

// payeeKnown reports whether the payee has a row or a ledger account: a
// payee earns before it is onboarded, and is onboarded before it earns.
func payeeKnown(ctx context.Context, bdb *bun.DB, ref payeeRef) (bool, error) {
	var known bool
	err := bdb.DB.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM payees WHERE kind = $1 AND id = $2)
	OR EXISTS (SELECT 1 FROM ledger_accounts WHERE owner = $3)`, ref.Kind, ref.ID, ref.Owner).Scan(&known)
	if err != nil {
		return false, fmt.Errorf("look up payee %s: %w", ref.Owner, err)
	}
	return known, nil
}

// ledgerRow is one row of PayeeLedgerQuery.
type ledgerRow struct {
	ID                   int64
	Currency, Kind       string
	Amount, BalanceAfter int64
	Cause                string
	PurchaseID, PayoutID uuid.NullUUID
	Reference            sql.NullString
	EffectiveAt, Created time.Time
}

// ledgerQuery selects one page of a payee's entries.
type ledgerQuery struct {
	Ref      payeeRef
	Currency string // "" = every currency
	After    *int64 // cursor: the last entry of the previous page
	Limit    int
}

// errEntryUnknown: starting_after is not an entry of the payee (in the
// currency asked for).
var errEntryUnknown = errors.New("is not a ledger entry of this payee")

// listLedger returns up to q.Limit entries newest first and whether more
// follow.
func listLedger(ctx context.Context, bdb *bun.DB, q ledgerQuery) ([]ledgerRow, bool, error) {
	below := int64(math.MaxInt64)
	if q.After != nil {
		var ok bool
		err := bdb.DB.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
			WHERE e.id = $1 AND a.owner = $2 AND ($3 = '' OR a.currency = $3))`, *q.After, q.Ref.Owner, q.Currency).Scan(&ok)
		if err != nil {
			return nil, false, fmt.Errorf("load cursor entry %d: %w", *q.After, err)
		}
		if !ok {
			return nil, false, errEntryUnknown
		}
		below = *q.After
	}
	rows, err := bdb.DB.QueryContext(ctx, PayeeLedgerQuery, q.Ref.Owner, q.Currency, below, q.Limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list ledger entries of %s: %w", q.Ref.Owner, err)
	}
	defer rows.Close()
	var out []ledgerRow
	for rows.Next() {
		var r ledgerRow
		if err := rows.Scan(&r.ID, &r.Currency, &r.Kind, &r.Amount, &r.BalanceAfter, &r.Cause, &r.PurchaseID, &r.PayoutID,
			&r.Reference, &r.EffectiveAt, &r.Created); err != nil {
			return nil, false, fmt.Errorf("read ledger entries of %s: %w", q.Ref.Owner, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("read ledger entries of %s: %w", q.Ref.Owner, err)
	}
	more := len(out) > q.Limit
	if more {
		out = out[:q.Limit]
	}
	return out, more, nil
}

// errPayoutUnknown: starting_after is not a payout of the payee.
var errPayoutUnknown = errors.New("is not a payout of this payee")

// listPayouts returns up to limit payouts of the payee newest first
// (created_at, then id, both descending: a stable order for the cursor),
// through payouts_payee_created_idx, and whether more follow.
func listPayouts(ctx context.Context, idb bun.IDB, ref payeeRef, after *uuid.UUID, limit int) ([]model.Payout, bool, error) {
	sel := idb.NewSelect().Model((*model.Payout)(nil)).Where("payee_kind = ? AND payee_id = ?", ref.Kind, ref.ID)
	if after != nil {
		ok, err := idb.NewSelect().Model((*model.Payout)(nil)).
			Where("id = ?", *after).Where("payee_kind = ? AND payee_id = ?", ref.Kind, ref.ID).Exists(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("load cursor payout %s: %w", *after, err)
		}
		if !ok {
			return nil, false, errPayoutUnknown
		}
		// The cursor's key is read in SQL so its timestamp keeps its full
		// precision.
		sel = sel.Where("(created_at, id) < (SELECT c.created_at, c.id FROM payouts c WHERE c.id = ?)", *after)
	}
	var ps []model.Payout
	if err := sel.OrderExpr("created_at DESC, id DESC").Limit(int64(limit)+1).Scan(ctx, &ps); err != nil {
		return nil, false, fmt.Errorf("list payouts of %s: %w", ref.Owner, err)
	}
	more := len(ps) > limit
	if more {
		ps = ps[:limit]
	}
	return ps, more, nil
}
