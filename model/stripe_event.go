package model

import (
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Outcomes of StripeEvent.Outcome.
const (
	EventApplied   = "applied"   // the event changed the database
	EventDuplicate = "duplicate" // its domain key had already been applied: nothing changed
	EventIgnored   = "ignored"   // type not handled
	EventRecorded  = "recorded"  // handled type, kept for audit, no state change (e.g. unlinked payment intent)
)

// StripeEvent is one Stripe event id ever applied: the idempotency key and
// the audit trail, written in the transaction of the event's effects.
type StripeEvent struct {
	bun.BaseModel `bun:"table:stripe_events"`

	EventID         string     `bun:"event_id,pk"`
	Type            string     `bun:"type,notnull"`
	Endpoint        string     `bun:"endpoint,notnull"`
	Livemode        bool       `bun:"livemode,notnull"`
	APIVersion      string     `bun:"api_version,notnull"`
	StripeCreatedAt *time.Time `bun:"stripe_created_at"`
	ReceivedAt      *time.Time `bun:"received_at"`
	ProcessedAt     time.Time  `bun:"processed_at,notnull"`
	Outcome         string     `bun:"outcome,notnull"`
	Error           *string    `bun:"error"` // why nothing changed, for duplicate/recorded rows
	PurchaseID      *uuid.UUID `bun:"purchase_id,type:uuid"`
	Payload         JSON       `bun:"payload,notnull"` // jsonb
}
