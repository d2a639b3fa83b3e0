package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/split"
)

// DefaultHold is how long a sale's money stays pending after purchased_at
// before a release makes it available (PAYOUT_HOLD).
const DefaultHold = 168 * time.Hour

// MaxHold bounds the hold: money held for more than a year is a typo.
const MaxHold = 366 * 24 * time.Hour

// Config holds the ledger's settings; internal/config maps the environment
// onto it.
type Config struct {
	Hold time.Duration // PAYOUT_HOLD: time after purchased_at before release; 0 releases at once
}

// DefaultConfig returns the contract's defaults.
func DefaultConfig() Config { return Config{Hold: DefaultHold} }

// Validate checks the settings.
func (c Config) Validate() error {
	if c.Hold < 0 || c.Hold > MaxHold {
		return fmt.Errorf("ledger: PAYOUT_HOLD=%s outside [0, %s]", c.Hold, MaxHold)
	}
	return nil
}

// saleRow is a purchase as the rules and the verification read it.
type saleRow struct {
	ID                   uuid.UUID  `bun:"id"`
	Status               string     `bun:"status"`
	Currency             string     `bun:"currency"`
	AmountPaidCents      int64      `bun:"amount_paid_cents"`
	PlatformFeeCents     int64      `bun:"platform_fee_cents"`
	OrganizationFeeCents int64      `bun:"organization_fee_cents"`
	CreatorPayoutCents   int64      `bun:"creator_payout_cents"`
	RefundAmountCents    int64      `bun:"refund_amount_cents"`
	DisputeStatus        string     `bun:"dispute_status,nullzero"`
	OrganizationID       uuid.UUID  `bun:"organization_id"`
	PurchasedAt          *time.Time `bun:"purchased_at"`
	CreatorID            string     `bun:"creator_id"`
}

// saleColumns selects a saleRow from purchases p joined to content c.
const saleColumns = `p.id, p.status, p.currency, p.amount_paid_cents, p.platform_fee_cents, p.organization_fee_cents,
       p.creator_payout_cents, p.refund_amount_cents, p.dispute_status, p.organization_id, p.purchased_at, c.creator_id`

func (r saleRow) sale() Sale {
	s := Sale{
		PurchaseID: r.ID, Currency: r.Currency, OrganizationID: r.OrganizationID, CreatorID: r.CreatorID,
		Split: split.Split{Amount: r.AmountPaidCents, Platform: r.PlatformFeeCents,
			Organization: r.OrganizationFeeCents, Creator: r.CreatorPayoutCents},
	}
	if r.PurchasedAt != nil {
		s.PurchasedAt = *r.PurchasedAt
	}
	return s
}

// ReleaseDue releases, in one database transaction of its own, up to limit
// sales whose hold is over at now, and returns how many it released. It
// locks the purchases it releases (SKIP LOCKED: one being changed by an
// event is released by the next run), in id order and before the ledger's
// accounts, the order every poster of a purchase follows, so it runs safely
// beside the processor and beside another ReleaseDue.
func ReleaseDue(ctx context.Context, db *bun.DB, cfg Config, now time.Time, limit int) (int, error) {
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	if limit <= 0 {
		return 0, fmt.Errorf("ledger: release limit %d is not positive", limit)
	}
	released := 0
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var rows []saleRow
		err := tx.NewRaw(`
SELECT `+saleColumns+`
FROM purchases p JOIN content c ON c.id = p.content_id
WHERE p.id IN (
    SELECT t.purchase_id FROM ledger_transactions t
    WHERE t.cause = 'purchase' AND t.effective_at <= ?
      AND NOT EXISTS (SELECT 1 FROM ledger_transactions r WHERE r.idempotency_key = 'release:' || t.purchase_id::text)
    ORDER BY t.effective_at
    LIMIT ?)
ORDER BY p.id
FOR UPDATE OF p SKIP LOCKED`, now.Add(-cfg.Hold), limit).Scan(ctx, &rows)
		if err != nil {
			return fmt.Errorf("ledger: select due releases: %w", err)
		}
		if len(rows) == 0 {
			return nil
		}
		sales := make([]Sale, len(rows))
		for i, r := range rows {
			sales[i] = r.sale()
		}
		books, err := LoadBooks(ctx, tx, sales)
		if err != nil {
			return err
		}
		ts := make([]Transaction, 0, len(sales))
		for _, s := range sales {
			t, err := Release(s, books[s.PurchaseID], now)
			if err != nil {
				return err
			}
			ts = append(ts, t)
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
