package model

import (
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Invoice statuses of SubscriptionInvoice.Status; the schema derives them
// from the refunded amount.
const (
	InvoicePaid              = "paid"
	InvoicePartiallyRefunded = "partially_refunded"
	InvoiceRefunded          = "refunded"
)

// SubscriptionInvoice is one paid invoice of a subscription with its revenue
// split, fixed at PaidAt by the purchase rule, and what refunds and a lost
// dispute took back of each share (Reversed*).
type SubscriptionInvoice struct {
	bun.BaseModel `bun:"table:subscription_invoices"`

	ID                           string     `bun:"id,pk"` // Stripe's in_…
	SubscriptionID               string     `bun:"subscription_id,notnull"`
	PlanID                       uuid.UUID  `bun:"plan_id,notnull,type:uuid"`
	OrganizationID               uuid.UUID  `bun:"organization_id,notnull,type:uuid"`
	CreatorID                    *string    `bun:"creator_id"` // nil: an organization plan
	BillingReason                *string    `bun:"billing_reason"`
	PeriodStart                  time.Time  `bun:"period_start,notnull"`
	PeriodEnd                    time.Time  `bun:"period_end,notnull"`
	AmountPaidCents              int64      `bun:"amount_paid_cents,notnull"`
	Currency                     string     `bun:"currency,notnull"`
	PlatformFeeCents             int64      `bun:"platform_fee_cents,notnull"`
	OrganizationFeeCents         int64      `bun:"organization_fee_cents,notnull"`
	CreatorPayoutCents           int64      `bun:"creator_payout_cents,notnull"`
	PlatformFeeBps               int        `bun:"platform_fee_bps,notnull"`
	OrganizationFeeBps           int        `bun:"organization_fee_bps,notnull"`
	PlatformAgreementID          *uuid.UUID `bun:"platform_agreement_id,type:uuid"`
	PlatformFeeConfigID          *uuid.UUID `bun:"platform_fee_config_id,type:uuid"`
	CreatorOrgAgreementID        *uuid.UUID `bun:"creator_org_agreement_id,type:uuid"`
	StripeChargeID               *string    `bun:"stripe_charge_id"`
	StripePaymentIntentID        *string    `bun:"stripe_payment_intent_id"`
	Status                       string     `bun:"status,notnull"`
	PaidAt                       time.Time  `bun:"paid_at,notnull"`
	RefundAmountCents            int64      `bun:"refund_amount_cents,notnull"`
	RefundedAt                   *time.Time `bun:"refunded_at"`
	RefundReason                 *string    `bun:"refund_reason"`
	StripeRefundID               *string    `bun:"stripe_refund_id"`
	DisputeStatus                *string    `bun:"dispute_status"` // open, won, lost; nil: never disputed
	StripeDisputeID              *string    `bun:"stripe_dispute_id"`
	DisputeAmountCents           int64      `bun:"dispute_amount_cents,notnull"`
	DisputedAt                   *time.Time `bun:"disputed_at"`
	DisputeClosedAt              *time.Time `bun:"dispute_closed_at"`
	ReversedPlatformFeeCents     int64      `bun:"reversed_platform_fee_cents,notnull"`
	ReversedOrganizationFeeCents int64      `bun:"reversed_organization_fee_cents,notnull"`
	ReversedCreatorPayoutCents   int64      `bun:"reversed_creator_payout_cents,notnull"`
	Livemode                     bool       `bun:"livemode,notnull"`
	CreatedAt                    time.Time  `bun:"created_at,notnull,default:current_timestamp"`
	UpdatedAt                    time.Time  `bun:"updated_at,notnull,default:current_timestamp"`
}

// SubscriptionInvoicePayment links an invoice to the payment that paid it
// (invoice_payment.paid), which is how a refund or dispute finds the invoice
// from API 2025-03-31 on.
type SubscriptionInvoicePayment struct {
	bun.BaseModel `bun:"table:subscription_invoice_payments"`

	ID              string    `bun:"id,pk"` // Stripe's inpay_…
	InvoiceID       string    `bun:"invoice_id,notnull"`
	PaymentIntentID *string   `bun:"payment_intent_id"`
	ChargeID        *string   `bun:"charge_id"`
	CreatedAt       time.Time `bun:"created_at,notnull,default:current_timestamp"`
}
