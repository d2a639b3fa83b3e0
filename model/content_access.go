package model

import (
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Access types of ContentAccess.AccessType.
const (
	AccessPurchased     = "purchased"
	AccessSubscription  = "subscription"
	AccessComplimentary = "complimentary"
	AccessPreview       = "preview"
)

// ContentAccess is the one access row of a (user, content) pair. Purchase
// rows are kept in line with purchase.HasAccess by the purchase handlers.
type ContentAccess struct {
	bun.BaseModel `bun:"table:content_access"`

	ID             uuid.UUID  `bun:"id,pk,type:uuid,default:gen_random_uuid()"`
	UserID         string     `bun:"user_id,notnull"`
	ContentID      uuid.UUID  `bun:"content_id,notnull,type:uuid"`
	OrganizationID uuid.UUID  `bun:"organization_id,notnull,type:uuid"`
	AccessType     string     `bun:"access_type,notnull"`
	PurchaseID     *uuid.UUID `bun:"purchase_id,type:uuid"` // set exactly when AccessType is purchased
	GrantedAt      time.Time  `bun:"granted_at,notnull,default:current_timestamp"`
	ExpiresAt      *time.Time `bun:"expires_at"`
	RevokedAt      *time.Time `bun:"revoked_at"`
	RevokeReason   *string    `bun:"revoke_reason"`
	CreatedAt      time.Time  `bun:"created_at,notnull,default:current_timestamp"`
	UpdatedAt      time.Time  `bun:"updated_at,notnull,default:current_timestamp"`
}
