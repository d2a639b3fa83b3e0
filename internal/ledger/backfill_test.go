package ledger

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// Backfill posts every paid purchase made before the ledger — its sale, its
// cumulative refund, its dispute open, won or lost (the lost amount from the
// stored dispute event when there is one) — so the ledger verifies; a
// purchase posted already, and an unpaid one, are left alone; running it
// again posts nothing.
func TestBackfill(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 2, 3)
	ps := w.addPurchases(t, rand.New(rand.NewPCG(5, 5)), 40, "usd")
	postTx(t, w.db, must(PurchaseCompleted(ps[0].sale))) // posted by the processor already
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := w.db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	half := func(p purchase) int64 { return p.row.AmountPaidCents / 2 }
	exec(`UPDATE purchases SET status = 'partially_refunded', refund_amount_cents = ?, stripe_refund_id = 're_1' WHERE id = ?`, half(ps[1]), ps[1].row.ID)
	exec(`UPDATE purchases SET status = 'refunded', refund_amount_cents = amount_paid_cents, refunded_at = now() WHERE id = ?`, ps[2].row.ID)
	exec(`UPDATE purchases SET dispute_status = 'open', stripe_dispute_id = 'du_3', disputed_at = now() WHERE id = ?`, ps[3].row.ID)
	exec(`UPDATE purchases SET dispute_status = 'won', stripe_dispute_id = 'du_4', dispute_closed_at = now() WHERE id = ?`, ps[4].row.ID)
	exec(`UPDATE purchases SET status = 'dispute_lost', dispute_status = 'lost', stripe_dispute_id = 'du_5' WHERE id = ?`, ps[5].row.ID)
	exec(`UPDATE purchases SET status = 'dispute_lost', dispute_status = 'lost', refund_amount_cents = ?, stripe_dispute_id = 'du_6' WHERE id = ?`,
		half(ps[6]), ps[6].row.ID)
	exec(`UPDATE purchases SET status = 'pending', purchased_at = NULL WHERE id = ?`, ps[7].row.ID)
	// The lost dispute of ps[5] was for a third of the amount, as its
	// stored close event says.
	lost := ps[5].row.AmountPaidCents / 3
	payload := `{"id":"evt_5","type":"charge.dispute.closed","data":{"object":{"id":"du_5","object":"dispute","amount":` +
		strconv.FormatInt(lost, 10) + `,"status":"lost"}}}`
	exec(`INSERT INTO stripe_events (event_id, type, endpoint, livemode, api_version, processed_at, outcome, purchase_id, payload)
VALUES ('evt_5', 'charge.dispute.closed', 'default', false, '2023-10-16', now(), 'applied', ?, ?::jsonb)`, ps[5].row.ID, payload)

	sum, err := Backfill(ctx, w.db, 7) // a small batch: several pages
	if err != nil {
		t.Fatal(err)
	}
	if sum.Purchases != 38 || sum.Refunds != 3 || sum.Disputes != 4 {
		t.Fatalf("summary = %+v, want 38 purchases (40 − one posted − one pending), 3 refunds, 4 disputes", sum)
	}
	mustVerify(t, w.db)
	var amount int64
	if err := w.db.NewRaw(`SELECT amount_cents FROM ledger_transactions WHERE idempotency_key = ?`,
		"dispute:"+ps[5].row.ID.String()+":closed").Scan(ctx, &amount); err != nil || amount != lost {
		t.Fatalf("lost dispute posted with %d (%v), want %d from its event", amount, err, lost)
	}
	var n int
	if err := w.db.NewRaw(`SELECT count(*) FROM ledger_transactions`).Scan(ctx, &n); err != nil {
		t.Fatal(err)
	}
	again, err := Backfill(ctx, w.db, 7)
	if err != nil || again != (BackfillSummary{}) {
		t.Fatalf("second backfill = %+v, %v", again, err)
	}
	var m int
	if err := w.db.NewRaw(`SELECT count(*) FROM ledger_transactions`).Scan(ctx, &m); err != nil || m != n {
		t.Fatalf("second backfill wrote %d transactions", m-n)
	}
	// The backfilled sales are released like any other.
	if _, err := ReleaseDue(ctx, w.db, Config{Hold: 0}, time.Now(), 1000); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, w.db)
}
