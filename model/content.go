package model

import (
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Content is one item of the catalog. The processor only reads it, to check
// that a checkout's content exists and belongs to its organization.
type Content struct {
	bun.BaseModel `bun:"table:content"`

	ID             uuid.UUID  `bun:"id,pk,type:uuid"`
	CreatorID      string     `bun:"creator_id,notnull"`
	OrganizationID uuid.UUID  `bun:"organization_id,notnull,type:uuid"`
	PriceCents     int64      `bun:"price_cents,notnull"`
	Currency       string     `bun:"currency,notnull"`
	Visibility     string     `bun:"visibility,notnull,default:'public'"` // public, unlisted, private
	CreatedAt      time.Time  `bun:"created_at,notnull,default:current_timestamp"`
	UpdatedAt      time.Time  `bun:"updated_at,notnull,default:current_timestamp"`
	DeletedAt      *time.Time `bun:"deleted_at,soft_delete,nullzero"`
}
