package model

import (
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Purchase statuses; docs/lifecycle.md has the transition table.
const (
	PurchasePending           = "pending"            // checkout completed, payment not yet settled
	PurchaseCompleted         = "completed"          // paid; access granted
	PurchaseFailed            = "failed"             // async payment failed or session expired; terminal
	PurchasePartiallyRefunded = "partially_refunded" // some money returned; access per policy
	PurchaseRefunded          = "refunded"           // fully refunded; access revoked
	PurchaseDisputeLost       = "dispute_lost"       // chargeback lost; access revoked; terminal
)

// Dispute states of Purchase.DisputeStatus (nil = never disputed).
const (
	DisputeOpen = "open"
	DisputeWon  = "won"
	DisputeLost = "lost"
)

// Purchase is one checkout session's purchase with its revenue split, fixed
// when it completed.
type Purchase struct {
	bun.BaseModel `bun:"table:purchases"`

	ID                      uuid.UUID  `bun:"id,pk,type:uuid"`
	CustomerID              string     `bun:"customer_id,notnull"`
	ContentID               uuid.UUID  `bun:"content_id,notnull,type:uuid"`
	OrganizationID          uuid.UUID  `bun:"organization_id,notnull,type:uuid"`
	CreatorID               string     `bun:"creator_id,nullzero"` // the content's creator when paid (snapshot); filled from the content when empty on insert
	AmountPaidCents         int64      `bun:"amount_paid_cents,notnull"`
	Currency                string     `bun:"currency,notnull"`
	PlatformFeeCents        int64      `bun:"platform_fee_cents,notnull"`
	OrganizationFeeCents    int64      `bun:"organization_fee_cents,notnull"`
	CreatorPayoutCents      int64      `bun:"creator_payout_cents,notnull"`
	PlatformFeeBps          int        `bun:"platform_fee_bps,notnull"`
	OrganizationFeeBps      int        `bun:"organization_fee_bps,notnull"`
	PlatformAgreementID     *uuid.UUID `bun:"platform_agreement_id,type:uuid"`
	PlatformFeeConfigID     *uuid.UUID `bun:"platform_fee_config_id,type:uuid"`
	CreatorOrgAgreementID   *uuid.UUID `bun:"creator_org_agreement_id,type:uuid"`
	StripeCheckoutSessionID string     `bun:"stripe_checkout_session_id,notnull"`
	StripePaymentIntentID   *string    `bun:"stripe_payment_intent_id"`
	StripeChargeID          *string    `bun:"stripe_charge_id"`
	StripeCustomerID        *string    `bun:"stripe_customer_id"`
	Livemode                bool       `bun:"livemode,notnull"`
	Status                  string     `bun:"status,notnull"`
	PurchasedAt             *time.Time `bun:"purchased_at"`
	FailedAt                *time.Time `bun:"failed_at"`
	FailureReason           *string    `bun:"failure_reason"`
	RefundedAt              *time.Time `bun:"refunded_at"`
	RefundAmountCents       int64      `bun:"refund_amount_cents,notnull"`
	RefundReason            *string    `bun:"refund_reason"`
	StripeRefundID          *string    `bun:"stripe_refund_id"`
	DisputeStatus           *string    `bun:"dispute_status"`
	StripeDisputeID         *string    `bun:"stripe_dispute_id"`
	DisputedAt              *time.Time `bun:"disputed_at"`
	DisputeClosedAt         *time.Time `bun:"dispute_closed_at"`
	CreatedAt               time.Time  `bun:"created_at,notnull,default:current_timestamp"`
	UpdatedAt               time.Time  `bun:"updated_at,notnull,default:current_timestamp"`
	DeletedAt               *time.Time `bun:"deleted_at,soft_delete,nullzero"`
}
