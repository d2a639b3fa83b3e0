package purchase

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/eventtx"
	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

// change is a purchase change made in this transaction, to be followed by
// the access sync, the outbox event and the metrics.
type change struct {
	from        State
	p           *model.Purchase // as written
	reason      string          // trigger, stored as revoke_reason when access ends
	kind        string          // outbox kind; derived from the state change when ""
	refundDelta int64           // money this event refunded
	// disputeAmount is the amount of the event's dispute (the ledger holds,
	// or gives back when lost, its parties' parts of it).
	disputeAmount int64
	// ref is the Stripe object behind the change (re_…, du_…), "" if none:
	// the ledger transaction's reference.
	ref string
}

// changed finishes a purchase change: content access, the PURCHASES event,
// the ledger postings (ledger.go) and the metrics (applied after commit).
func (f *family) changed(ctx context.Context, tx bun.Tx, ev eventtx.Event, rec *eventtx.Record, c change) error {
	now := f.cfg.Now().UTC()
	to := stateOf(c.p)
	acc, err := syncAccess(ctx, tx, c.p, f.cfg.Access, now, c.reason)
	if err != nil {
		return err
	}
	kind := c.kind
	if kind == "" {
		kind = kindOf(c.from, to)
	}
	if kind == "" {
		return fmt.Errorf("purchase %s: change %v → %v has no event kind", c.p.ID, c.from, to)
	}
	if err := f.post(ctx, tx, ev, rec, c, to); err != nil {
		return err
	}
	data := dataOf(c.p, c.from.Status, f.cfg.Access.Grants(to), ev.ID)
	if data.Refund != nil {
		data.Refund.DeltaCents = c.refundDelta
	}
	if _, err := outbox.Add(ctx, tx, streams.PurchaseSubject(kind), streams.PurchaseEventType(kind), c.p.ID, data, now); err != nil {
		return err
	}
	p, fx := c.p, f.effects(rec)
	if to.Status != c.from.Status {
		fx.status(p.Currency, to.Status)
		if to.Status == model.PurchaseCompleted {
			fx.revenue(p.Currency, split.Split{Amount: p.AmountPaidCents, Platform: p.PlatformFeeCents,
				Organization: p.OrganizationFeeCents, Creator: p.CreatorPayoutCents})
		}
	}
	if to.Dispute != c.from.Dispute {
		fx.dispute(to.Dispute)
	}
	if c.refundDelta > 0 {
		fx.refund(p.Currency, c.refundDelta)
	}
	if acc != accessUnchanged {
		fx.access(acc)
	}
	rec.Link(p.ID)
	rec.Applied()
	return nil
}

// kindOf names the PURCHASES event of a state change.
func kindOf(from, to State) string {
	if from.Status != to.Status {
		switch to.Status {
		case model.PurchasePending:
			return streams.PurchasePending
		case model.PurchaseCompleted:
			return streams.PurchaseCompleted
		case model.PurchaseFailed:
			return streams.PurchaseFailed
		case model.PurchasePartiallyRefunded, model.PurchaseRefunded:
			return streams.PurchaseRefunded
		case model.PurchaseDisputeLost:
			return streams.PurchaseDisputeLost
		}
	}
	if from.Dispute != to.Dispute {
		switch to.Dispute {
		case model.DisputeOpen:
			return streams.PurchaseDisputed
		case model.DisputeWon:
			return streams.PurchaseDisputeWon
		case model.DisputeLost:
			return streams.PurchaseDisputeLost
		}
	}
	return ""
}

// dataOf is the event data of p as written.
func dataOf(p *model.Purchase, previous string, access bool, eventID string) streams.PurchaseData {
	d := streams.PurchaseData{
		PurchaseID: p.ID, CustomerID: p.CustomerID, ContentID: p.ContentID, OrganizationID: p.OrganizationID,
		CreatorID: p.CreatorID, AmountPaidCents: p.AmountPaidCents, Currency: p.Currency,
		Split: streams.PurchaseSplit{
			PlatformFeeCents: p.PlatformFeeCents, OrganizationFeeCents: p.OrganizationFeeCents,
			CreatorPayoutCents: p.CreatorPayoutCents, PlatformFeeBps: p.PlatformFeeBps,
			OrganizationFeeBps: p.OrganizationFeeBps, PlatformAgreementID: p.PlatformAgreementID,
			PlatformFeeConfigID: p.PlatformFeeConfigID, CreatorOrgAgreementID: p.CreatorOrgAgreementID,
		},
		Status: p.Status, PreviousStatus: previous, Access: access,
		Stripe: streams.PurchaseStripe{
			CheckoutSessionID: p.StripeCheckoutSessionID, PaymentIntentID: deref(p.StripePaymentIntentID),
			ChargeID: deref(p.StripeChargeID), CustomerID: deref(p.StripeCustomerID), EventID: eventID,
		},
		PurchasedAt: p.PurchasedAt, FailedAt: p.FailedAt, FailureReason: deref(p.FailureReason),
		Livemode: p.Livemode,
	}
	if p.RefundAmountCents > 0 {
		d.Refund = &streams.PurchaseRefund{
			AmountCents: p.RefundAmountCents, Full: p.RefundAmountCents >= p.AmountPaidCents,
			RefundedAt: p.RefundedAt, Reason: deref(p.RefundReason), StripeRefundID: deref(p.StripeRefundID),
		}
	}
	if p.DisputeStatus != nil {
		d.Dispute = &streams.PurchaseDispute{
			Status: *p.DisputeStatus, StripeDisputeID: deref(p.StripeDisputeID),
			DisputedAt: p.DisputedAt, ClosedAt: p.DisputeClosedAt,
		}
	}
	return d
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
