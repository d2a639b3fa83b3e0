package model

import (
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Payout statuses.
const (
	PayoutPending   = "pending"    // row and ledger posting written; no transfer answered yet
	PayoutInTransit = "in_transit" // a transfer attempt is under way or must be retried
	PayoutPaid      = "paid"       // Stripe created the transfer
	PayoutFailed    = "failed"     // permanently refused; the money is back in available
	PayoutCanceled  = "canceled"   // withdrawn before any transfer; the money is back in available
)

// Payout is one Stripe transfer of a payee's available balance in one
// currency. TransferGroup is "payout:<id>".
type Payout struct {
	bun.BaseModel `bun:"table:payouts"`

	ID                  uuid.UUID  `bun:"id,pk,type:uuid"`
	PayeeKind           string     `bun:"payee_kind,notnull"`
	PayeeID             string     `bun:"payee_id,notnull"`
	Currency            string     `bun:"currency,notnull"`
	AmountCents         int64      `bun:"amount_cents,notnull"`
	AmountReversedCents int64      `bun:"amount_reversed_cents,notnull"` // the transfer's cumulative amount_reversed
	Status              string     `bun:"status,notnull"`
	StripeTransferID    *string    `bun:"stripe_transfer_id"`
	TransferGroup       string     `bun:"transfer_group,notnull"`
	FailureCode         *string    `bun:"failure_code"`
	Attempts            int        `bun:"attempts,notnull"` // number of the idempotency key in use: 0 none sent, 1 payout:<id>, n payout:<id>:<n>
	FirstAttemptAt      *time.Time `bun:"first_attempt_at"`
	LastAttemptAt       *time.Time `bun:"last_attempt_at"`
	PaidAt              *time.Time `bun:"paid_at"`
	FailedAt            *time.Time `bun:"failed_at"`
	CanceledAt          *time.Time `bun:"canceled_at"`
	NextAttemptAt       *time.Time `bun:"next_attempt_at"` // after a spent key: the next key not before this
	LastError           *string    `bun:"last_error"`      // the last answer that settled nothing
	CreatedAt           time.Time  `bun:"created_at,notnull,default:current_timestamp"`
	UpdatedAt           time.Time  `bun:"updated_at,notnull,default:current_timestamp"`
}
