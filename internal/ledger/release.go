package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// ReleaseDue releases, in one database transaction of its own, up to limit
// sales whose hold is over at now — purchases first, then subscription
// invoices — and returns how many it released. It locks the purchases and
// invoices it releases (SKIP LOCKED: one being changed by an event is
// released by the next run), in id order and before the ledger's accounts,
// the order every poster of a purchase or an invoice follows, so it runs
// safely beside the processor and beside another ReleaseDue.
func ReleaseDue(ctx context.Context, db *bun.DB, cfg Config, now time.Time, limit int) (int, error) {
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	if limit <= 0 {
		return 0, fmt.Errorf("ledger: release limit %d is not positive", limit)
	}
	released := 0
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		ts, err := duePurchaseReleases(ctx, tx, cfg, now, limit)
		if err != nil {
			return err
		}
		if n := limit - len(ts); n > 0 {
			its, err := dueInvoiceReleases(ctx, tx, cfg, now, n)
			if err != nil {
				return err
			}
			ts = append(ts, its...)
		}
		if len(ts) == 0 {
			return nil
		}
		out, err := PostMany(ctx, tx, ts)
		if err != nil {
			return err
		}
		for _, o := range out {
			if o == Posted {
				released++
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return released, nil
}

// duePurchaseReleases locks up to limit posted purchases whose hold is over
// at now and returns their releases.
func duePurchaseReleases(ctx context.Context, tx bun.Tx, cfg Config, now time.Time, limit int) ([]Transaction, error) {
	var rows []saleRow
	err := tx.NewRaw(`
SELECT `+saleColumns+`
FROM purchases p
WHERE p.id IN (
    SELECT t.purchase_id FROM ledger_transactions t
    WHERE t.cause = 'purchase' AND t.effective_at <= ?
      AND NOT EXISTS (SELECT 1 FROM ledger_transactions r WHERE r.idempotency_key = 'release:' || t.purchase_id::text)
    ORDER BY t.effective_at
    LIMIT ?)
ORDER BY p.id
FOR UPDATE OF p SKIP LOCKED`, now.Add(-cfg.Hold), limit).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("ledger: select due releases: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	sales := make([]Sale, len(rows))
	for i, r := range rows {
		sales[i] = r.sale()
	}
	books, err := LoadBooks(ctx, tx, sales)
	if err != nil {
		return nil, err
	}
	ts := make([]Transaction, 0, len(sales))
	for _, s := range sales {
		t, err := Release(s, books[s.PurchaseID], now)
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}
