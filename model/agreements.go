package model

import (
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// PlatformFeeConfig is the platform-wide fee in basis points for a window of
// time; it applies to organizations without an agreement of their own.
type PlatformFeeConfig struct {
	bun.BaseModel `bun:"table:platform_fee_config"`

	ID                    uuid.UUID  `bun:"id,pk,type:uuid,default:gen_random_uuid()"`
	PlatformFeePercentage int        `bun:"platform_fee_percentage,notnull"` // basis points, 0–10000
	EffectiveFrom         time.Time  `bun:"effective_from,notnull"`
	EffectiveUntil        *time.Time `bun:"effective_until"` // nil = open ended
	CreatedAt             time.Time  `bun:"created_at,notnull,default:current_timestamp"`
	UpdatedAt             time.Time  `bun:"updated_at,notnull,default:current_timestamp"`
}

// OrganizationPlatformAgreement overrides the platform fee for one
// organization during its window.
type OrganizationPlatformAgreement struct {
	bun.BaseModel `bun:"table:organization_platform_agreements"`

	ID                    uuid.UUID  `bun:"id,pk,type:uuid,default:gen_random_uuid()"`
	OrganizationID        uuid.UUID  `bun:"organization_id,notnull,type:uuid"`
	PlatformFeePercentage int        `bun:"platform_fee_percentage,notnull"` // basis points, 0–10000
	EffectiveFrom         time.Time  `bun:"effective_from,notnull"`
	EffectiveUntil        *time.Time `bun:"effective_until"`
	CreatedAt             time.Time  `bun:"created_at,notnull,default:current_timestamp"`
	UpdatedAt             time.Time  `bun:"updated_at,notnull,default:current_timestamp"`
}

// CreatorOrganizationAgreement is the organization's cut, in basis points, of
// what remains of a creator's sale after the platform fee.
type CreatorOrganizationAgreement struct {
	bun.BaseModel `bun:"table:creator_organization_agreements"`

	ID                        uuid.UUID  `bun:"id,pk,type:uuid,default:gen_random_uuid()"`
	CreatorID                 string     `bun:"creator_id,notnull"`
	OrganizationID            uuid.UUID  `bun:"organization_id,notnull,type:uuid"`
	OrganizationFeePercentage int        `bun:"organization_fee_percentage,notnull"` // basis points, 0–10000
	EffectiveFrom             time.Time  `bun:"effective_from,notnull"`
	EffectiveUntil            *time.Time `bun:"effective_until"`
	CreatedAt                 time.Time  `bun:"created_at,notnull,default:current_timestamp"`
	UpdatedAt                 time.Time  `bun:"updated_at,notnull,default:current_timestamp"`
}
