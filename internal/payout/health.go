package payout

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Health is the state the payout gauges and alerts watch.
type Health struct {
	Open          int           // payouts pending or in transit
	OldestOpenAge time.Duration // age of the oldest of them
	// NegativeBalances counts payee available balances below zero: a
	// refund or lost dispute after the money was transferred, netted by
	// later earnings. One that stays negative for weeks is money the payee
	// may never earn back.
	NegativeBalances  int
	OldestNegativeAge time.Duration // since the oldest of them went (and stayed) below zero
}

// ReadHealth reads Health at now. A balance's time below zero starts at
// the effective time of the entry after its last entry at or above zero.
func ReadHealth(ctx context.Context, db bun.IDB, now time.Time) (Health, error) {
	var h Health
	var open struct {
		N      int        `bun:"n"`
		Oldest *time.Time `bun:"oldest"`
	}
	if err := db.NewRaw(`SELECT count(*) AS n, min(created_at) AS oldest FROM payouts WHERE status IN (?)`, openStatuses).
		Scan(ctx, &open); err != nil {
		return h, fmt.Errorf("payout: count open payouts: %w", err)
	}
	h.Open = open.N
	if open.Oldest != nil {
		h.OldestOpenAge = max(now.Sub(*open.Oldest), 0)
	}
	var neg struct {
		N      int        `bun:"n"`
		Oldest *time.Time `bun:"oldest"`
	}
	err := db.NewRaw(`
SELECT count(*) AS n, min(x.since) AS oldest
FROM (SELECT (SELECT t.effective_at
              FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
              WHERE e.account_id = a.id
                AND e.account_version > coalesce((SELECT max(z.account_version) FROM ledger_entries z
                                                  WHERE z.account_id = a.id AND z.balance_after >= 0), 0)
              ORDER BY e.account_version LIMIT 1) AS since
      FROM ledger_accounts a
      WHERE a.kind = 'available' AND a.owner <> 'platform' AND a.balance < 0) x`).Scan(ctx, &neg)
	if err != nil {
		return h, fmt.Errorf("payout: read negative balances: %w", err)
	}
	h.NegativeBalances = neg.N
	if neg.Oldest != nil {
		h.OldestNegativeAge = max(now.Sub(*neg.Oldest), 0)
	}
	return h, nil
}
