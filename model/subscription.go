package model

import (
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Subscription statuses, as Stripe names them.
const (
	SubscriptionIncomplete        = "incomplete"         // first invoice not paid yet; no access
	SubscriptionIncompleteExpired = "incomplete_expired" // first invoice never paid; terminal
	SubscriptionTrialing          = "trialing"           // in its trial; access
	SubscriptionActive            = "active"             // paid; access
	SubscriptionPastDue           = "past_due"           // renewal unpaid; access for the plan's grace days
	SubscriptionCanceled          = "canceled"           // ended; terminal
	SubscriptionUnpaid            = "unpaid"             // retries exhausted, kept open; no access
	SubscriptionPaused            = "paused"             // trial ended without a payment method; no access
)

// Subscription is a Stripe subscription sold through paystream, as the
// newest applied event (EventCreated, LastEventID) left it. AccessUntil is
// when its access ends (nil: none); the access check compares it with now.
type Subscription struct {
	bun.BaseModel `bun:"table:subscriptions"`

	ID                 string     `bun:"id,pk"` // Stripe's sub_…
	CustomerID         string     `bun:"customer_id,notnull"`
	PlanID             uuid.UUID  `bun:"plan_id,notnull,type:uuid"`
	StripeCustomerID   *string    `bun:"stripe_customer_id"`
	Status             string     `bun:"status,notnull"`
	CurrentPeriodStart time.Time  `bun:"current_period_start,notnull"`
	CurrentPeriodEnd   time.Time  `bun:"current_period_end,notnull"`
	CancelAtPeriodEnd  bool       `bun:"cancel_at_period_end,notnull"`
	CancelAt           *time.Time `bun:"cancel_at"`
	CanceledAt         *time.Time `bun:"canceled_at"`
	EndedAt            *time.Time `bun:"ended_at"`
	TrialStart         *time.Time `bun:"trial_start"`
	TrialEnd           *time.Time `bun:"trial_end"`
	StartedAt          *time.Time `bun:"started_at"` // Stripe's start_date
	PastDueSince       *time.Time `bun:"past_due_since"`
	AccessUntil        *time.Time `bun:"access_until"`
	ExpiredAt          *time.Time `bun:"expired_at"`            // when the end of its latest access was announced (subscriptions.expired)
	EventCreated       time.Time  `bun:"event_created,notnull"` // created of the newest event applied
	LastEventID        string     `bun:"last_event_id,notnull"`
	Livemode           bool       `bun:"livemode,notnull"`
	CreatedAt          time.Time  `bun:"created_at,notnull,default:current_timestamp"`
	UpdatedAt          time.Time  `bun:"updated_at,notnull,default:current_timestamp"`

	Plan *SubscriptionPlan `bun:"rel:belongs-to,join:plan_id=id"`
}
