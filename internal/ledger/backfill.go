package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/paystream/paystream/model"
)

// BackfillSummary counts what Backfill posted.
type BackfillSummary struct {
	Purchases int // paid purchases without a sale posting, now posted
	Refunds   int // of them, with a refund posted
	Disputes  int // of them, with a dispute opening or close posted
}

// Backfill posts, for every paid purchase without a sale posting (one made
// before the ledger existed), its sale, its cumulative refund and its
// dispute, from the purchase row, in transactions of up to batch purchases.
// Running it again posts nothing: a purchase with a sale posting is left
// alone. It locks the purchases it posts, in id order, and rereads their
// books under the lock, so it runs safely beside the processor.
//
// A dispute's amount is not on the purchase row: it is read from the
// dispute event the processor stored (stripe_events.payload), the close
// before the opening; without one, the amount not refunded is taken, which
// is what Stripe disputes when nothing else was said.
func Backfill(ctx context.Context, db *bun.DB, batch int) (BackfillSummary, error) {
	var sum BackfillSummary
	if batch <= 0 {
		return sum, fmt.Errorf("ledger backfill: batch %d is not positive", batch)
	}
	after := uuid.Nil
	for {
		var n int
		err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var err error
			n, after, err = backfillPage(ctx, tx, after, batch, &sum)
			return err
		})
		if err != nil {
			return sum, err
		}
		if n < batch {
			return sum, nil
		}
	}
}

// backfillPage posts the unposted purchases among the next batch paid ones
// after id after, and returns how many it read and the last id.
func backfillPage(ctx context.Context, tx bun.Tx, after uuid.UUID, batch int, sum *BackfillSummary) (int, uuid.UUID, error) {
	var rows []backfillRow
	err := tx.NewRaw(`
SELECT `+saleColumns+`, p.stripe_refund_id, p.refunded_at, p.stripe_dispute_id, p.disputed_at, p.dispute_closed_at,
       (SELECT (e.payload->'data'->'object'->>'amount')::bigint FROM stripe_events e
        WHERE e.purchase_id = p.id AND e.type IN ('charge.dispute.closed', 'charge.dispute.created')
          AND e.payload->'data'->'object'->>'amount' ~ '^[0-9]{1,18}$'
        ORDER BY e.type = 'charge.dispute.closed' DESC, e.processed_at DESC LIMIT 1) AS dispute_amount
FROM purchases p JOIN content c ON c.id = p.content_id
WHERE p.id > ? AND p.status NOT IN (?, ?)
ORDER BY p.id
LIMIT ?
FOR UPDATE OF p`, after, model.PurchasePending, model.PurchaseFailed, batch).Scan(ctx, &rows)
	if err != nil {
		return 0, after, fmt.Errorf("ledger backfill: select purchases after %s: %w", after, err)
	}
	if len(rows) == 0 {
		return 0, after, nil
	}
	last := rows[len(rows)-1].ID
	ids := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	var posted []uuid.UUID
	if err := tx.NewRaw(`SELECT purchase_id FROM ledger_transactions WHERE cause = 'purchase' AND purchase_id = ANY(?::uuid[])`,
		pgdialect.Array(ids)).Scan(ctx, &posted); err != nil {
		return 0, after, fmt.Errorf("ledger backfill: read sale postings: %w", err)
	}
	done := make(map[uuid.UUID]bool, len(posted))
	for _, id := range posted {
		done[id] = true
	}
	var ts []Transaction
	for _, r := range rows {
		if done[r.ID] {
			continue
		}
		t, refunded, disputed, err := r.postings()
		if err != nil {
			return 0, after, err
		}
		ts = append(ts, t...)
		sum.Purchases++
		if refunded {
			sum.Refunds++
		}
		if disputed {
			sum.Disputes++
		}
	}
	if _, err := PostMany(ctx, tx, ts); err != nil {
		return 0, after, fmt.Errorf("ledger backfill: %w", err)
	}
	return len(rows), last, nil
}

// backfillRow is a purchase with what its refund and dispute postings need.
type backfillRow struct {
	saleRow
	StripeRefundID  *string    `bun:"stripe_refund_id"`
	RefundedAt      *time.Time `bun:"refunded_at"`
	StripeDisputeID *string    `bun:"stripe_dispute_id"`
	DisputedAt      *time.Time `bun:"disputed_at"`
	DisputeClosedAt *time.Time `bun:"dispute_closed_at"`
	DisputeAmount   *int64     `bun:"dispute_amount"`
}

// postings returns the purchase's sale, refund and dispute transactions, in
// the order they happened, each built on the book the ones before leave.
func (r backfillRow) postings() (ts []Transaction, refunded, disputed bool, err error) {
	s := r.sale()
	sale, err := PurchaseCompleted(s)
	if err != nil {
		return nil, false, false, err
	}
	b := Book{PurchaseID: s.PurchaseID}
	add := func(t Transaction) error {
		if t.IsZero() {
			return nil
		}
		if err := b.apply(s, t); err != nil {
			return err
		}
		ts = append(ts, t)
		return nil
	}
	if err := add(sale); err != nil {
		return nil, false, false, err
	}
	at := func(p *time.Time) time.Time {
		if p != nil {
			return *p
		}
		return s.PurchasedAt
	}
	if r.RefundAmountCents > 0 {
		t, err := Refund(s, b, r.RefundAmountCents, deref(r.StripeRefundID), at(r.RefundedAt))
		if err != nil {
			return nil, false, false, err
		}
		refunded = !t.IsZero()
		if err := add(t); err != nil {
			return nil, false, false, err
		}
	}
	if r.DisputeStatus == "" {
		return ts, refunded, false, nil
	}
	amount := s.Split.Amount - min(r.RefundAmountCents, s.Split.Amount)
	if r.DisputeAmount != nil {
		amount = *r.DisputeAmount
	}
	du := deref(r.StripeDisputeID)
	var t Transaction
	switch r.DisputeStatus {
	case model.DisputeOpen:
		t, err = DisputeOpened(s, b, amount, du, at(r.DisputedAt))
	case model.DisputeWon:
		t, err = DisputeWon(s, b, du, at(r.DisputeClosedAt))
	case model.DisputeLost:
		t, err = DisputeLost(s, b, amount, du, at(r.DisputeClosedAt))
	default:
		err = fmt.Errorf("ledger backfill: purchase %s: dispute_status %q", s.PurchaseID, r.DisputeStatus)
	}
	if err != nil {
		return nil, false, false, err
	}
	return ts, refunded, true, add(t)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
