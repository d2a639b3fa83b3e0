package model

import (
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// LedgerAccount is one (owner, currency, kind) account of the double-entry
// ledger, with its stored balance and the number of entries it has had.
// internal/ledger names the owners and kinds; docs/ledger.md explains them.
type LedgerAccount struct {
	bun.BaseModel `bun:"table:ledger_accounts"`

	ID        int64     `bun:"id,pk,autoincrement"`
	Owner     string    `bun:"owner,notnull"`    // platform, creator:<id>, organization:<uuid>
	Currency  string    `bun:"currency,notnull"` // ISO 4217, lower case
	Kind      string    `bun:"kind,notnull"`     // pending, available, disputed, in_transit, paid_out, revenue, stripe_clearing
	Balance   int64     `bun:"balance,notnull"`  // minor units; may be negative
	Version   int64     `bun:"version,notnull"`  // number of entries; the last entry's account_version
	CreatedAt time.Time `bun:"created_at,notnull,default:current_timestamp"`
	UpdatedAt time.Time `bun:"updated_at,notnull,default:current_timestamp"`
}

// LedgerTransaction is one posting: a cause (a purchase, a refund, a
// payout, …) named by an idempotency key the cause determines.
type LedgerTransaction struct {
	bun.BaseModel `bun:"table:ledger_transactions"`

	ID             int64      `bun:"id,pk,autoincrement"`
	IdempotencyKey string     `bun:"idempotency_key,notnull"`
	Cause          string     `bun:"cause,notnull"`
	PurchaseID     *uuid.UUID `bun:"purchase_id,type:uuid"`
	PayoutID       *uuid.UUID `bun:"payout_id,type:uuid"`
	AmountCents    int64      `bun:"amount_cents,notnull"` // the money the cause reported (see the migration)
	Reference      *string    `bun:"reference"`            // the Stripe object behind the cause, if any
	EffectiveAt    time.Time  `bun:"effective_at,notnull"`
	CreatedAt      time.Time  `bun:"created_at,notnull,default:current_timestamp"`
}

// LedgerEntry is one signed amount of a transaction on one account, with the
// balance and version the account had after it.
type LedgerEntry struct {
	bun.BaseModel `bun:"table:ledger_entries"`

	ID             int64 `bun:"id,pk,autoincrement"`
	TransactionID  int64 `bun:"transaction_id,notnull"`
	AccountID      int64 `bun:"account_id,notnull"`
	Amount         int64 `bun:"amount,notnull"` // non-zero; positive adds to the account
	BalanceAfter   int64 `bun:"balance_after,notnull"`
	AccountVersion int64 `bun:"account_version,notnull"` // 1, 2, … per account
}
