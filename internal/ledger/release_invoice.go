package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// dueInvoiceReleases locks up to limit posted subscription invoices whose
// hold is over at now (paid_at + Hold, the effective time of their sale
// posting) and returns their releases, as duePurchaseReleases does for
// purchases.
func dueInvoiceReleases(ctx context.Context, tx bun.Tx, cfg Config, now time.Time, limit int) ([]Transaction, error) {
	var rows []invoiceRow
	err := tx.NewRaw(`
SELECT i.id, i.status, i.currency, i.amount_paid_cents, i.platform_fee_cents, i.organization_fee_cents,
       i.creator_payout_cents, i.refund_amount_cents, i.dispute_status, i.reversed_platform_fee_cents,
       i.reversed_organization_fee_cents, i.reversed_creator_payout_cents, i.organization_id, i.creator_id, i.paid_at
FROM subscription_invoices i
WHERE i.id IN (
    SELECT t.invoice_id FROM ledger_transactions t
    WHERE t.cause = 'invoice' AND t.effective_at <= ?
      AND NOT EXISTS (SELECT 1 FROM ledger_transactions r WHERE r.idempotency_key = 'release:' || t.invoice_id)
    ORDER BY t.effective_at
    LIMIT ?)
ORDER BY i.id
FOR UPDATE OF i SKIP LOCKED`, now.Add(-cfg.Hold), limit).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("ledger: select due invoice releases: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	sales := make([]InvoiceSale, len(rows))
	for i, r := range rows {
		sales[i] = r.sale()
	}
	books, err := LoadInvoiceBooks(ctx, tx, sales)
	if err != nil {
		return nil, err
	}
	ts := make([]Transaction, 0, len(sales))
	for _, s := range sales {
		t, err := InvoiceRelease(s, books[s.InvoiceID], now)
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}
