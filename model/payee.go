package model

import (
	"time"

	"github.com/uptrace/bun"
)

// Payee kinds: who can receive a share of a purchase.
const (
	PayeeCreator      = "creator"
	PayeeOrganization = "organization"
)

// Payee is a creator or organization with (or about to get) a Stripe Express
// connected account.
type Payee struct {
	bun.BaseModel `bun:"table:payees"`

	Kind            string  `bun:"kind,pk"`
	ID              string  `bun:"id,pk"`             // creator_id, or the organization's uuid
	StripeAccountID *string `bun:"stripe_account_id"` // acct_…, set once at onboarding
	ChargesEnabled  bool    `bun:"charges_enabled,notnull"`
	PayoutsEnabled  bool    `bun:"payouts_enabled,notnull"`
	RequirementsDue JSON    `bun:"requirements_due,notnull"` // jsonb array of Stripe requirement names
	DisabledReason  *string `bun:"disabled_reason"`
	// AccountEventCreated is the `created` of the last account.updated
	// applied; an older event is not applied over it.
	AccountEventCreated *time.Time `bun:"account_event_created"`
	// PayoutsBlockedAt is when Stripe refused a transfer to the account for
	// good or the account was deauthorized; an account.updated created
	// later clears it. A blocked payee accrues but is not paid.
	PayoutsBlockedAt     *time.Time `bun:"payouts_blocked_at"`
	PayoutsBlockedReason *string    `bun:"payouts_blocked_reason"` // account_invalid, transfers_not_allowed, deauthorized
	CreatedAt            time.Time  `bun:"created_at,notnull,default:current_timestamp"`
	UpdatedAt            time.Time  `bun:"updated_at,notnull,default:current_timestamp"`
}
