package subscription

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/eventtx"
	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/model"
)

// billingCycle is the billing_reason of a renewal invoice.
const billingCycle = "subscription_cycle"

// announce writes the subscriptions.* events of what the event changed, in
// its transaction, and queues its metrics for after the commit. The events
// report changes paystream applied: a change Stripe reported that a newer
// event had overtaken is never applied, so never announced.
func (f *Family) announce(ctx context.Context, tx bun.Tx, ev eventtx.Event, sev Event, out Outcome, rec *eventtx.Record) error {
	fx := effects{m: f.m, rec: rec}
	now := f.cfg.Now().UTC()
	emit := func(kind string, d EventData) error {
		fx.event(kind)
		return addEvent(ctx, tx, kind, d, now)
	}
	before, after := out.Before, out.After
	prev := ""
	if before != nil {
		prev = before.Status
	}
	if after != nil && out.Result == ResultApplied && after.Status != prev {
		d := dataOf(after, prev, ev.ID)
		if started(prev, after.Status) {
			if err := emit(EventStarted, d); err != nil {
				return err
			}
		}
		switch after.Status {
		case model.SubscriptionPastDue:
			if err := emit(EventPastDue, d); err != nil {
				return err
			}
		case model.SubscriptionCanceled:
			if sev.Subscription != nil {
				d.Reason = sev.Subscription.CancelReason
			}
			fx.canceled(d.Reason)
			if err := emit(EventCanceled, d); err != nil {
				return err
			}
		}
	}
	if out.AccessEnded && after != nil {
		d := dataOf(after, prev, ev.ID)
		d.Reason = endReason(after)
		fx.expired(d.Reason)
		if err := emit(EventExpired, d); err != nil {
			return err
		}
	}
	if inv := out.Invoice; inv != nil && out.InvoiceCreated {
		fx.revenueOf(inv.Currency, split.Split{Amount: inv.AmountPaidCents, Platform: inv.PlatformFeeCents,
			Organization: inv.OrganizationFeeCents, Creator: inv.CreatorPayoutCents})
		if inv.BillingReason != nil && *inv.BillingReason == billingCycle && after != nil {
			fx.renewal(inv.Currency, "paid")
			d := dataOf(after, after.Status, ev.ID)
			d.Invoice = invoiceData(inv)
			if err := emit(EventRenewed, d); err != nil {
				return err
			}
		}
	}
	if sev.Kind == KindInvoiceFailed && sev.Invoice.BillingReason == billingCycle && out.After != nil && out.Result != ResultDuplicate {
		fx.renewal(sev.Invoice.Currency, "failed")
	}
	if out.RefundDelta > 0 && out.Invoice != nil {
		fx.refund(out.Invoice.Currency, out.RefundDelta)
	}
	return nil
}

// started reports whether a subscription that was prev (""; none) and is
// now status began to grant access with this change: from nothing or
// incomplete to trialing, active, or past_due (a subscription first seen
// already behind on a renewal started before).
func started(prev, status string) bool {
	if prev != "" && prev != model.SubscriptionIncomplete {
		return false
	}
	switch status {
	case model.SubscriptionTrialing, model.SubscriptionActive, model.SubscriptionPastDue:
		return true
	}
	return false
}
