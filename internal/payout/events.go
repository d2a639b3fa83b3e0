package payout

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/model"
)

// Payout event kinds: the last token of the subject (payouts.<kind>) and
// the middle of the CloudEvents type (com.paystream.payout.<kind>.v1).
const (
	EventCreated  = "created"  // the row and its ledger posting: available → in_transit
	EventPaid     = "paid"     // Stripe created the transfer: in_transit → paid_out
	EventFailed   = "failed"   // Stripe refused for good: the money is back in available
	EventCanceled = "canceled" // withdrawn before any request: the money is back in available
	EventReversed = "reversed" // a transfer reversal credited back to available
)

// EventVersion is the version suffix of every payout and payee event type.
const EventVersion = "v1"

// EventType returns the CloudEvents type of a payout event kind,
// com.paystream.payout.<kind>.v1.
func EventType(kind string) string { return "com.paystream.payout." + kind + "." + EventVersion }

// PayeeUpdatedSubject and PayeeUpdatedType name the event of a payee's
// account state changing (account.updated, a deauthorization, a block).
const (
	PayeeUpdatedSubject = "payees.updated"
	PayeeUpdatedType    = "com.paystream.payee.updated." + EventVersion
)

// PayoutData is a payout as it stands after the change an event reports.
type PayoutData struct {
	PayoutID            uuid.UUID  `json:"payout_id"`
	PayeeKind           string     `json:"payee_kind"`
	PayeeID             string     `json:"payee_id"`
	Currency            string     `json:"currency"`
	AmountCents         int64      `json:"amount_cents"`
	AmountReversedCents int64      `json:"amount_reversed_cents"`
	Status              string     `json:"status"`
	TransferGroup       string     `json:"transfer_group"`
	StripeTransferID    string     `json:"stripe_transfer_id,omitempty"`
	FailureCode         string     `json:"failure_code,omitempty"`
	Attempts            int        `json:"attempts"`
	CreatedAt           time.Time  `json:"created_at"`
	PaidAt              *time.Time `json:"paid_at,omitempty"`
	FailedAt            *time.Time `json:"failed_at,omitempty"`
	CanceledAt          *time.Time `json:"canceled_at,omitempty"`
}

func payoutData(p *model.Payout) PayoutData {
	d := PayoutData{
		PayoutID: p.ID, PayeeKind: p.PayeeKind, PayeeID: p.PayeeID, Currency: p.Currency,
		AmountCents: p.AmountCents, AmountReversedCents: p.AmountReversedCents, Status: p.Status,
		TransferGroup: p.TransferGroup, Attempts: p.Attempts, CreatedAt: p.CreatedAt,
		PaidAt: p.PaidAt, FailedAt: p.FailedAt, CanceledAt: p.CanceledAt,
	}
	if p.StripeTransferID != nil {
		d.StripeTransferID = *p.StripeTransferID
	}
	if p.FailureCode != nil {
		d.FailureCode = *p.FailureCode
	}
	return d
}

// addPayoutEvent writes payouts.<kind> for p into the outbox through tx.
func addPayoutEvent(ctx context.Context, tx bun.IDB, kind string, p *model.Payout, now time.Time) error {
	_, err := outbox.Add(ctx, tx, "payouts."+kind, EventType(kind), p.ID, payoutData(p), now)
	return err
}

// PayeeData is a payee's account state after the change a payees.updated
// event reports.
type PayeeData struct {
	Kind                string     `json:"kind"`
	ID                  string     `json:"id"`
	StripeAccountID     string     `json:"stripe_account_id,omitempty"`
	ChargesEnabled      bool       `json:"charges_enabled"`
	PayoutsEnabled      bool       `json:"payouts_enabled"`
	RequirementsDue     model.JSON `json:"requirements_due"`
	DisabledReason      string     `json:"disabled_reason,omitempty"`
	PayoutsBlocked      bool       `json:"payouts_blocked"`
	BlockedReason       string     `json:"payouts_blocked_reason,omitempty"`
	AccountEventCreated *time.Time `json:"account_event_created,omitempty"`
	Change              string     `json:"change"` // account_updated, deauthorized, blocked
}

// payeeNamespace makes a payee's CloudEvents subject: the outbox names an
// event's aggregate by uuid, and a payee's key is (kind, id).
var payeeNamespace = uuid.MustParse("8f0c5b8e-3f4a-4d59-9a8e-5b0f6c1d2e3a")

// PayeeAggregateID returns the uuid a payee's events carry as their
// CloudEvents subject: a version 5 uuid of "<kind>:<id>", the same for
// every event of the payee.
func PayeeAggregateID(kind, id string) uuid.UUID {
	return uuid.NewSHA1(payeeNamespace, []byte(kind+":"+id))
}

// addPayeeEvent writes payees.updated for p into the outbox through tx.
func addPayeeEvent(ctx context.Context, tx bun.IDB, p *model.Payee, change string, now time.Time) error {
	d := PayeeData{
		Kind: p.Kind, ID: p.ID, ChargesEnabled: p.ChargesEnabled, PayoutsEnabled: p.PayoutsEnabled,
		RequirementsDue: p.RequirementsDue, PayoutsBlocked: p.PayoutsBlockedAt != nil,
		AccountEventCreated: p.AccountEventCreated, Change: change,
	}
	if p.StripeAccountID != nil {
		d.StripeAccountID = *p.StripeAccountID
	}
	if p.DisabledReason != nil {
		d.DisabledReason = *p.DisabledReason
	}
	if p.PayoutsBlockedReason != nil {
		d.BlockedReason = *p.PayoutsBlockedReason
	}
	if len(d.RequirementsDue) == 0 {
		d.RequirementsDue = model.JSON("[]")
	}
	_, err := outbox.Add(ctx, tx, PayeeUpdatedSubject, PayeeUpdatedType, PayeeAggregateID(p.Kind, p.ID), d, now)
	return err
}
