// Package model holds paystream's Bun models: one Go type per table.
package model

import (
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Outbox is a domain event written in the transaction of the change it
// describes and relayed to the PURCHASES stream with Nats-Msg-Id = ID.
type Outbox struct {
	bun.BaseModel `bun:"table:outbox"`

	ID          uuid.UUID  `bun:"id,pk,type:uuid"`
	Subject     string     `bun:"subject,notnull"`    // purchases.completed, …
	EventType   string     `bun:"event_type,notnull"` // CloudEvents type
	AggregateID uuid.UUID  `bun:"aggregate_id,notnull,type:uuid"`
	Payload     JSON       `bun:"payload,notnull"` // jsonb: the CloudEvents envelope
	CreatedAt   time.Time  `bun:"created_at,notnull,default:current_timestamp"`
	PublishedAt *time.Time `bun:"published_at"`
	Attempts    int        `bun:"attempts,notnull,default:0"`
	LastError   *string    `bun:"last_error"`
	// TraceParent is the W3C trace context of the writing transaction
	// ("" when tracing is off), continued by the relay's publish.
	TraceParent string `bun:"traceparent,nullzero"`
}
