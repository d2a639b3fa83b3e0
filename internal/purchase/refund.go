package purchase

import (
	"context"
	"fmt"

	"github.com/stripe/stripe-go/v76"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/eventtx"
	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

// TypeChargeRefunded is the card refund event at API 2023-10-16 (refund.*
// events there cover cash-balance refunds only).
const TypeChargeRefunded = "charge.refunded"

// lockPaid returns the purchase a charge event is about, locked, or a
// fault.Pending error when it does not exist yet or is not paid yet: Stripe
// does not order events, so the refund or dispute may overtake the checkout.
// The runtime retries with backoff and dead-letters after its budget.
func lockPaid(ctx context.Context, tx bun.Tx, ev eventtx.Event, paymentIntentID, chargeID string, t Trigger) (*model.Purchase, error) {
	if paymentIntentID == "" && chargeID == "" {
		return nil, fault.New(fault.Invalid, "invalid_payload", "%s %s names neither a payment intent nor a charge", ev.Type, ev.ID)
	}
	p, err := lockByPayment(ctx, tx, paymentIntentID, chargeID)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fault.New(fault.Pending, "purchase_not_found",
			"no purchase for payment intent %q / charge %q yet; retrying until its checkout event is applied", paymentIntentID, chargeID)
	}
	if Premature(stateOf(p), t) {
		return nil, fault.New(fault.Pending, "purchase_not_paid",
			"purchase %s is %s; %s waits until it is paid", p.ID, p.Status, t)
	}
	if p.StripeChargeID == nil && chargeID != "" {
		p.StripeChargeID = &chargeID
	}
	return p, nil
}

// refundRoute applies charge.refunded. Stripe reports the charge's
// cumulative amount_refunded, so the purchase keeps the maximum it has seen:
// redeliveries, second event ids and out-of-order refund events can never
// count money twice or lower the amount.
func (f *family) refundRoute(ctx context.Context, tx bun.Tx, ev eventtx.Event, ch *stripe.Charge, rec *eventtx.Record) error {
	if err := checkObject(ev, ch.ID, ch.Object, objectCharge); err != nil {
		return err
	}
	if ch.AmountRefunded < 0 {
		return fault.New(fault.Invalid, "invalid_payload", "charge %s has negative amount_refunded %d", ch.ID, ch.AmountRefunded)
	}
	pi := ""
	if ch.PaymentIntent != nil {
		pi = ch.PaymentIntent.ID
	}
	if err := checkRefs(ev, "payment_intent", pi); err != nil {
		return err
	}
	if ch.Refunds != nil && len(ch.Refunds.Data) > 0 && ch.Refunds.Data[0] != nil {
		r := ch.Refunds.Data[0]
		if err := checkRefs(ev, "refund", r.ID, "refund reason", string(r.Reason)); err != nil {
			return err
		}
	}
	full := ch.Refunded
	trig := TriggerPartialRefund
	if full {
		trig = TriggerFullRefund
	}
	p, err := lockPaid(ctx, tx, ev, pi, ch.ID, trig)
	if err != nil {
		return err
	}
	if string(ch.Currency) != p.Currency {
		return fault.New(fault.Invalid, "currency_mismatch", "charge %s is in %q but purchase %s in %q", ch.ID, ch.Currency, p.ID, p.Currency)
	}
	// A refund beyond the purchase amount (the charge was larger) counts as
	// the whole purchase.
	amount := min(ch.AmountRefunded, p.AmountPaidCents)
	if amount >= p.AmountPaidCents {
		full, trig = true, TriggerFullRefund
	}
	if amount == 0 && !full {
		rec.Link(p.ID)
		rec.Recorded(fmt.Sprintf("charge %s reports nothing refunded", ch.ID))
		return nil
	}
	if p.Status == model.PurchaseFailed {
		rec.Link(p.ID)
		rec.Recorded(fmt.Sprintf("purchase %s failed; refund of charge %s not applied", p.ID, ch.ID))
		return nil
	}
	from := stateOf(p)
	to, statusChanged := Transition(from, trig)
	newAmount := max(p.RefundAmountCents, amount)
	delta := newAmount - p.RefundAmountCents
	// Two events may report the same full refund (a second event id, a later
	// charge.refunded); refunded_at keeps the earliest, whatever the order.
	at := ev.At
	earlier := full && p.RefundedAt != nil && at.Before(*p.RefundedAt)
	if !statusChanged && delta == 0 {
		if !earlier {
			rec.Link(p.ID)
			rec.Duplicate(fmt.Sprintf("purchase %s already has %d refunded (%s)", p.ID, p.RefundAmountCents, p.Status))
			return nil
		}
		// Only the timestamp moves: no money, no status, so no event.
		p.RefundedAt, p.UpdatedAt = &at, f.cfg.Now().UTC()
		if err := updatePurchase(ctx, tx, p); err != nil {
			return err
		}
		rec.Link(p.ID)
		rec.Applied()
		return nil
	}
	p.RefundAmountCents = newAmount
	ref := ""
	if delta > 0 && ch.Refunds != nil && len(ch.Refunds.Data) > 0 && ch.Refunds.Data[0] != nil {
		// Stripe lists refunds newest first; the newest explains the latest amount.
		r := ch.Refunds.Data[0]
		id, reason := r.ID, string(r.Reason)
		p.StripeRefundID, ref = &id, id
		if reason != "" {
			p.RefundReason = &reason
		}
	}
	// refunded_at marks the full refund, also when a lost dispute already
	// decided the status, so both delivery orders store the same row.
	if full && (p.RefundedAt == nil || earlier) {
		p.RefundedAt = &at
	}
	p.Status, p.UpdatedAt = to.Status, f.cfg.Now().UTC()
	if err := updatePurchase(ctx, tx, p); err != nil {
		return err
	}
	return f.changed(ctx, tx, ev, rec, change{from: from, p: p, reason: string(trig),
		kind: streams.PurchaseRefunded, refundDelta: delta, ref: ref})
}
