package model

import (
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// SubscriptionCheckoutSession is a Stripe Checkout Session in subscription
// mode created by the purchase API for one customer and one plan. Its
// Status uses the CheckoutOpen/Complete/Expired values; the API moves it
// from what Stripe answers when it considers reusing the session.
type SubscriptionCheckoutSession struct {
	bun.BaseModel `bun:"table:subscription_checkout_sessions"`

	ID               string     `bun:"id,pk"` // Stripe's cs_…
	CustomerID       string     `bun:"customer_id,notnull"`
	PlanID           uuid.UUID  `bun:"plan_id,notnull,type:uuid"`
	OrganizationID   uuid.UUID  `bun:"organization_id,notnull,type:uuid"`
	AmountCents      int64      `bun:"amount_cents,notnull"` // the plan's price when the session was created
	Currency         string     `bun:"currency,notnull"`
	Interval         string     `bun:"interval,notnull"` // month, year
	IntervalCount    int        `bun:"interval_count,notnull"`
	TrialDays        int        `bun:"trial_days,notnull"`
	StripeCustomerID *string    `bun:"stripe_customer_id"` // the Stripe customer the session was opened for, when known
	SubscriptionID   *string    `bun:"subscription_id"`    // the sub_… a completed session created
	Status           string     `bun:"status,notnull"`
	URL              *string    `bun:"url"`
	IdempotencyKey   *string    `bun:"idempotency_key"`
	Livemode         bool       `bun:"livemode,notnull"`
	ExpiresAt        time.Time  `bun:"expires_at,notnull"`
	CompletedAt      *time.Time `bun:"completed_at"`
	ExpiredAt        *time.Time `bun:"expired_at"`
	CreatedAt        time.Time  `bun:"created_at,notnull,default:current_timestamp"`
	UpdatedAt        time.Time  `bun:"updated_at,notnull,default:current_timestamp"`
}
