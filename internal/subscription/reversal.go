package subscription

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/model"
)

// ErrInvoiceNotFound is Handle's answer to a refund or dispute of a charge
// that pays no invoice paystream recorded: a purchase's charge, or an
// invoice whose invoice.paid has not been applied yet. The processor decides
// which (it tries purchases, then retries).
var ErrInvoiceNotFound = errors.New("no subscription invoice for the charge")

// refund applies charge.refunded to the invoice the charge paid. Stripe
// reports the charge's cumulative amount_refunded, so the invoice keeps the
// largest amount it has seen: redeliveries and out-of-order refund events
// never count money twice or lower it.
func (s *Store) refund(ctx context.Context, idb bun.IDB, ev Event) (Outcome, error) {
	r := ev.Refund
	if r.AmountRefunded < 0 {
		return Outcome{}, fault.New(fault.Invalid, "invalid_payload", "charge %s has negative amount_refunded %d", r.ChargeID, r.AmountRefunded)
	}
	inv, err := lockInvoiceByPayment(ctx, idb, r.PaymentIntentID, r.ChargeID)
	if err != nil {
		return Outcome{}, err
	}
	if r.Currency != inv.Currency {
		return Outcome{}, fault.New(fault.Invalid, "currency_mismatch", "charge %s is in %q but invoice %s in %q",
			r.ChargeID, r.Currency, inv.ID, inv.Currency)
	}
	amount := min(r.AmountRefunded, inv.AmountPaidCents)
	full := r.Full || amount >= inv.AmountPaidCents
	if full {
		amount = inv.AmountPaidCents
	}
	out := Outcome{SubscriptionID: inv.SubscriptionID, Invoice: inv}
	newAmount := max(inv.RefundAmountCents, amount)
	delta := newAmount - inv.RefundAmountCents
	// A full refund reported twice (a second event id) keeps the earliest
	// time, whatever the order.
	at := ev.Created
	earlier := full && inv.RefundedAt != nil && at.Before(*inv.RefundedAt)
	if delta == 0 && !earlier {
		out.Result, out.Note = ResultDuplicate, fmt.Sprintf("invoice %s already has %d refunded", inv.ID, inv.RefundAmountCents)
		return out, nil
	}
	inv.RefundAmountCents = newAmount
	if delta > 0 && r.RefundID != "" {
		inv.StripeRefundID, inv.RefundReason = optional(r.RefundID), optional(r.Reason)
	}
	if full && (inv.RefundedAt == nil || earlier) {
		inv.RefundedAt = &at
	}
	if err := s.saveReturned(ctx, idb, inv); err != nil {
		return Outcome{}, err
	}
	out.Result, out.RefundDelta = ResultApplied, delta
	return out, nil
}

// dispute applies charge.dispute.created and .closed to the invoice the
// charge paid. A dispute only moves forward (none → open → won or lost; a
// close may overtake the open); a lost one gives the disputed amount back
// like a refund.
func (s *Store) dispute(ctx context.Context, idb bun.IDB, ev Event) (Outcome, error) {
	d := ev.Dispute
	if d.Amount < 0 {
		return Outcome{}, fault.New(fault.Invalid, "invalid_payload", "dispute %s has negative amount %d", d.ID, d.Amount)
	}
	inv, err := lockInvoiceByPayment(ctx, idb, d.PaymentIntentID, d.ChargeID)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{SubscriptionID: inv.SubscriptionID, Invoice: inv}
	to := model.DisputeOpen
	if d.Closed {
		switch d.Status {
		case "lost":
			to = model.DisputeLost
		case "won", "warning_closed": // an inquiry closed without a chargeback
			to = model.DisputeWon
		default:
			out.Result, out.Note = ResultRecorded, fmt.Sprintf("dispute %s closed with status %q", d.ID, d.Status)
			return out, nil
		}
	}
	from := ""
	if inv.DisputeStatus != nil {
		from = *inv.DisputeStatus
	}
	if from == to || from == model.DisputeWon || from == model.DisputeLost {
		out.Result, out.Note = ResultDuplicate, fmt.Sprintf("invoice %s dispute is %q; %s changes nothing", inv.ID, from, ev.Type)
		return out, nil
	}
	at := ev.Created
	if inv.StripeDisputeID == nil {
		inv.StripeDisputeID = optional(d.ID)
	}
	if inv.DisputedAt == nil {
		inv.DisputedAt = &at // also when the close overtook the open
	}
	if to != model.DisputeOpen {
		inv.DisputeClosedAt = &at
	}
	inv.DisputeStatus = &to
	inv.DisputeAmountCents = min(d.Amount, inv.AmountPaidCents)
	if err := s.saveReturned(ctx, idb, inv); err != nil {
		return Outcome{}, err
	}
	out.Result = ResultApplied
	return out, nil
}

// saveReturned derives the invoice's status and reversal from its refunded
// and disputed amounts and writes them.
func (s *Store) saveReturned(ctx context.Context, idb bun.IDB, inv *model.SubscriptionInvoice) error {
	switch {
	case inv.RefundAmountCents == 0:
		inv.Status = model.InvoicePaid
	case inv.RefundAmountCents < inv.AmountPaidCents:
		inv.Status = model.InvoicePartiallyRefunded
	default:
		inv.Status = model.InvoiceRefunded
	}
	rev, err := proportionalReversal(inv)
	if err != nil {
		return err
	}
	inv.ReversedPlatformFeeCents, inv.ReversedOrganizationFeeCents, inv.ReversedCreatorPayoutCents =
		rev.Platform, rev.Organization, rev.Creator
	inv.UpdatedAt = s.now().UTC()
	if _, err := idb.NewUpdate().Model(inv).ExcludeColumn("id", "created_at").WherePK().Exec(ctx); err != nil {
		return fmt.Errorf("update invoice %s: %w", inv.ID, err)
	}
	return nil
}

// returned is what left the platform for good from inv: its refunds plus a
// lost dispute, at most the amount paid.
func returned(inv *model.SubscriptionInvoice) int64 {
	r := inv.RefundAmountCents
	if inv.DisputeStatus != nil && *inv.DisputeStatus == model.DisputeLost {
		r += inv.DisputeAmountCents
	}
	return min(r, inv.AmountPaidCents)
}

// proportionalReversal is each party's share of what inv gave back, by the
// one proportional-refund rule purchases use too (split.Reversal): the parts
// sum exactly to the returned amount, never shrink as it grows, and a full
// return gives back exactly the snapshot.
func proportionalReversal(inv *model.SubscriptionInvoice) (split.Parts, error) {
	snap := split.Split{Amount: inv.AmountPaidCents, Platform: inv.PlatformFeeCents,
		Organization: inv.OrganizationFeeCents, Creator: inv.CreatorPayoutCents}
	rev, err := split.Reversal(snap, returned(inv))
	if err != nil {
		return split.Parts{}, fmt.Errorf("reversal of invoice %s: %w", inv.ID, err)
	}
	return rev, nil
}

// lockInvoiceByPayment returns the invoice paid by the charge or payment
// intent, locked: matched on the invoice itself (API 2023-10-16 names both)
// or through invoice_payment.paid's link (2025-03-31 and later). Wraps
// ErrInvoiceNotFound when there is none.
func lockInvoiceByPayment(ctx context.Context, idb bun.IDB, paymentIntentID, chargeID string) (*model.SubscriptionInvoice, error) {
	if paymentIntentID == "" && chargeID == "" {
		return nil, fault.New(fault.Invalid, "invalid_payload", "the event names neither a payment intent nor a charge")
	}
	// The columns hold no empty strings (CHECK), so "" matches nothing.
	var inv model.SubscriptionInvoice
	err := idb.NewSelect().Model(&inv).
		Where("stripe_charge_id = ?", chargeID).
		WhereOr("stripe_payment_intent_id = ?", paymentIntentID).
		WhereOr("id IN (SELECT invoice_id FROM subscription_invoice_payments WHERE payment_intent_id = ? OR charge_id = ?)",
			paymentIntentID, chargeID).
		OrderExpr("created_at").Limit(1).For("UPDATE").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("payment intent %q / charge %q: %w", paymentIntentID, chargeID, ErrInvoiceNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("lock invoice of payment intent %q / charge %q: %w", paymentIntentID, chargeID, err)
	}
	return &inv, nil
}
