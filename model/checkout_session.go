package model

import (
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Checkout session statuses, as Stripe names them.
const (
	CheckoutOpen     = "open"     // created, not yet paid or expired
	CheckoutComplete = "complete" // checkout.session.completed (or async success) seen
	CheckoutExpired  = "expired"  // checkout.session.expired seen
)

// CheckoutSession is a Stripe Checkout Session created by the purchase API.
// The processor moves Status from the checkout webhooks.
type CheckoutSession struct {
	bun.BaseModel `bun:"table:checkout_sessions"`

	ID             string     `bun:"id,pk"` // Stripe's cs_…
	CustomerID     string     `bun:"customer_id,notnull"`
	ContentID      uuid.UUID  `bun:"content_id,notnull,type:uuid"`
	OrganizationID uuid.UUID  `bun:"organization_id,notnull,type:uuid"`
	AmountCents    int64      `bun:"amount_cents,notnull"`
	Currency       string     `bun:"currency,notnull"`
	Status         string     `bun:"status,notnull"`
	URL            *string    `bun:"url"`
	IdempotencyKey *string    `bun:"idempotency_key"`
	Livemode       bool       `bun:"livemode,notnull"`
	ExpiresAt      time.Time  `bun:"expires_at,notnull"`
	CompletedAt    *time.Time `bun:"completed_at"`
	ExpiredAt      *time.Time `bun:"expired_at"`
	CreatedAt      time.Time  `bun:"created_at,notnull,default:current_timestamp"`
	UpdatedAt      time.Time  `bun:"updated_at,notnull,default:current_timestamp"`
}
