package model

import (
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Billing intervals of SubscriptionPlan.Interval.
const (
	IntervalMonth = "month"
	IntervalYear  = "year"
)

// SubscriptionPlan is a membership on sale: it grants every non-deleted
// content item of CreatorID in OrganizationID, or of the whole organization
// when CreatorID is nil. Its scope cannot change once created (a trigger
// refuses it); archive it and create another.
type SubscriptionPlan struct {
	bun.BaseModel `bun:"table:subscription_plans"`

	ID             uuid.UUID  `bun:"id,pk,type:uuid,default:gen_random_uuid()"`
	OrganizationID uuid.UUID  `bun:"organization_id,notnull,type:uuid"`
	CreatorID      *string    `bun:"creator_id"` // nil: the whole organization's content
	Name           string     `bun:"name,notnull"`
	PriceCents     int64      `bun:"price_cents,notnull"`
	Currency       string     `bun:"currency,notnull"`
	Interval       string     `bun:"interval,notnull"` // month, year
	IntervalCount  int        `bun:"interval_count,notnull,default:1"`
	TrialDays      int        `bun:"trial_days,notnull,default:0"`
	GraceDays      int        `bun:"grace_days,notnull,default:3"` // access kept while past_due
	ArchivedAt     *time.Time `bun:"archived_at"`                  // no new checkouts; subscribers keep theirs
	CreatedAt      time.Time  `bun:"created_at,notnull,default:current_timestamp"`
	UpdatedAt      time.Time  `bun:"updated_at,notnull,default:current_timestamp"`
}
