package subscription

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/model"
)

var currencyRe = regexp.MustCompile(`^[a-z]{3}$`)

// invoiceEvent applies invoice.paid and invoice.payment_failed. An invoice
// says nothing of its subscription's state (Stripe sends
// customer.subscription.updated for that), so the subscription is only
// created, from Stripe, when the invoice overtook every other event of it.
// A paid invoice is then recorded with its split; a failed attempt changes
// nothing: access follows the subscription's status (past_due keeps it for
// the grace days), never a single failed charge.
func (s *Store) invoiceEvent(ctx context.Context, idb bun.IDB, ev Event, obs Observation) (Outcome, error) {
	inv := ev.Invoice
	if inv.SubscriptionID == "" {
		return Outcome{Result: ResultIgnored, Note: "invoice " + inv.ID + " belongs to no subscription"}, nil
	}
	out, err := s.sync(ctx, idb, inv.SubscriptionID, obs, inv.SubscriptionMetadata)
	if err != nil || out.After == nil {
		return out, err
	}
	if ev.Kind == KindInvoiceFailed {
		if out.Result != ResultApplied {
			out.Result = ResultRecorded
			out.Note = fmt.Sprintf("payment attempt %d of invoice %s failed; subscription %s is %s",
				inv.AttemptCount, inv.ID, out.After.ID, out.After.Status)
		}
		return out, nil
	}
	row, created, err := recordInvoice(ctx, idb, out.After, inv, ev.Created, s.now().UTC())
	if err != nil {
		return Outcome{}, err
	}
	out.Invoice, out.InvoiceCreated = row, created
	switch {
	case created:
		out.Result = ResultApplied
	case out.Result != ResultApplied:
		out.Result, out.Note = ResultDuplicate, "invoice "+inv.ID+" already recorded"
	}
	return out, nil
}

// recordInvoice stores paid invoice inv of sub (its Plan loaded) with the
// split judged at the invoice's time: status_transitions.paid_at, the same
// for every event and replay of that invoice (the event's created when the
// payload lacks it). created is false when the invoice was already there;
// it then only learns the charge or payment intent it lacked.
func recordInvoice(ctx context.Context, idb bun.IDB, sub *model.Subscription, inv *Invoice, eventCreated, now time.Time) (*model.SubscriptionInvoice, bool, error) {
	bad := func(format string, args ...any) error {
		return fault.New(fault.Invalid, "invalid_payload", "invoice %s: "+format, append([]any{inv.ID}, args...)...)
	}
	switch {
	case inv.AmountPaid < 0 || inv.AmountPaid > split.MaxAmount:
		return nil, false, bad("amount_paid %d outside [0, %d]", inv.AmountPaid, split.MaxAmount)
	case !currencyRe.MatchString(inv.Currency):
		return nil, false, bad("currency %q is not a lower-case ISO 4217 code", inv.Currency)
	case inv.PeriodStart.IsZero() || inv.PeriodEnd.Before(inv.PeriodStart):
		return nil, false, bad("no service period (%s–%s)", inv.PeriodStart.Format(time.RFC3339), inv.PeriodEnd.Format(time.RFC3339))
	}
	at := inv.PaidAt
	if at.IsZero() {
		at = eventCreated
	}
	sp, err := invoiceSplit(ctx, idb, sub.Plan, inv.AmountPaid, at)
	if err != nil {
		return nil, false, err
	}
	org, creator := planScope(sub.Plan)
	row := &model.SubscriptionInvoice{
		ID: inv.ID, SubscriptionID: sub.ID, PlanID: sub.PlanID, OrganizationID: org, CreatorID: optional(creator),
		BillingReason: optional(inv.BillingReason), PeriodStart: inv.PeriodStart, PeriodEnd: inv.PeriodEnd,
		AmountPaidCents: sp.Amount, Currency: inv.Currency, PlatformFeeCents: sp.Platform,
		OrganizationFeeCents: sp.Organization, CreatorPayoutCents: sp.Creator, PlatformFeeBps: sp.PlatformBps,
		OrganizationFeeBps: sp.OrganizationBps, PlatformAgreementID: sp.PlatformAgreementID,
		PlatformFeeConfigID: sp.PlatformFeeConfigID, CreatorOrgAgreementID: sp.CreatorOrgAgreementID,
		StripeChargeID: optional(inv.ChargeID), StripePaymentIntentID: optional(inv.PaymentIntentID),
		Status: model.InvoicePaid, PaidAt: at, Livemode: inv.Livemode, CreatedAt: now, UpdatedAt: now,
	}
	res, err := idb.NewInsert().Model(row).On("CONFLICT (id) DO NOTHING").Exec(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("insert invoice %s: %w", inv.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return row, err == nil, err
	}
	var have model.SubscriptionInvoice
	if err := idb.NewSelect().Model(&have).Where("id = ?", inv.ID).For("UPDATE").Scan(ctx); err != nil {
		return nil, false, fmt.Errorf("load invoice %s: %w", inv.ID, err)
	}
	if (have.StripeChargeID == nil && inv.ChargeID != "") || (have.StripePaymentIntentID == nil && inv.PaymentIntentID != "") {
		if have.StripeChargeID == nil {
			have.StripeChargeID = optional(inv.ChargeID)
		}
		if have.StripePaymentIntentID == nil {
			have.StripePaymentIntentID = optional(inv.PaymentIntentID)
		}
		have.UpdatedAt = now
		if _, err := idb.NewUpdate().Model(&have).Column("stripe_charge_id", "stripe_payment_intent_id", "updated_at").
			WherePK().Exec(ctx); err != nil {
			return nil, false, fmt.Errorf("update invoice %s: %w", inv.ID, err)
		}
	}
	return &have, false, nil
}

// invoiceSplit is the split of an invoice of plan p: the purchase rule
// (split.SplitAt, the agreements in force at at) for the plan's creator. An
// organization plan has no single creator, so the organization takes the
// creators' share: its rate is 100 % of what the platform leaves.
func invoiceSplit(ctx context.Context, idb bun.IDB, p *model.SubscriptionPlan, amount int64, at time.Time) (split.Split, error) {
	org, creator := planScope(p)
	if creator != "" {
		return split.SplitAt(ctx, idb, org, creator, amount, at)
	}
	terms, err := split.TermsAt(ctx, idb, org, "", at)
	if err != nil {
		return split.Split{}, err
	}
	terms.OrganizationBps, terms.CreatorOrgAgreementID = split.MaxBps, nil
	return split.Compute(amount, terms)
}

// invoicePayment records which payment paid an invoice (invoice_payment.paid,
// API 2025-03-31 and later), whether or not the invoice is known yet: a
// refund or dispute of that payment then finds its invoice.
func (s *Store) invoicePayment(ctx context.Context, idb bun.IDB, ev Event) (Outcome, error) {
	p := ev.InvoicePayment
	if p.PaymentIntentID == "" && p.ChargeID == "" {
		return Outcome{Result: ResultIgnored, Note: "invoice payment " + p.ID + " names neither a payment intent nor a charge"}, nil
	}
	row := &model.SubscriptionInvoicePayment{ID: p.ID, InvoiceID: p.InvoiceID, PaymentIntentID: optional(p.PaymentIntentID),
		ChargeID: optional(p.ChargeID), CreatedAt: s.now().UTC()}
	res, err := idb.NewInsert().Model(row).On("CONFLICT (id) DO NOTHING").Exec(ctx)
	if err != nil {
		return Outcome{}, fmt.Errorf("insert invoice payment %s: %w", p.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return Outcome{Result: ResultDuplicate, Note: "invoice payment " + p.ID + " already recorded"}, err
	}
	return Outcome{Result: ResultApplied}, nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
