package purchase

import (
	"context"
	"fmt"

	"github.com/stripe/stripe-go/v76"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/eventtx"
	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/model"
)

// Dispute event types. charge.dispute.updated and .funds_* change nothing
// paystream tracks and are recorded as ignored.
const (
	TypeDisputeCreated = "charge.dispute.created"
	TypeDisputeClosed  = "charge.dispute.closed"
)

// disputeRoute applies charge.dispute.created (closed = false) or
// charge.dispute.closed (closed = true).
func (f *family) disputeRoute(closed bool) func(context.Context, bun.Tx, eventtx.Event, *stripe.Dispute, *eventtx.Record) error {
	return func(ctx context.Context, tx bun.Tx, ev eventtx.Event, d *stripe.Dispute, rec *eventtx.Record) error {
		if err := checkObject(ev, d.ID, d.Object, objectDispute); err != nil {
			return err
		}
		trig := TriggerDisputeOpened
		if closed {
			switch d.Status {
			case stripe.DisputeStatusLost:
				trig = TriggerDisputeLost
			case stripe.DisputeStatusWon, stripe.DisputeStatusWarningClosed:
				// warning_closed: an inquiry closed without becoming a
				// chargeback, which for the purchase is a win.
				trig = TriggerDisputeWon
			default:
				return f.recordOnly(ctx, tx, rec, d, fmt.Sprintf("dispute %s closed with status %q", d.ID, d.Status))
			}
		}
		pi, charge := "", ""
		if d.PaymentIntent != nil {
			pi = d.PaymentIntent.ID
		}
		if d.Charge != nil {
			charge = d.Charge.ID
		}
		if err := checkRefs(ev, "payment_intent", pi, "charge", charge); err != nil {
			return err
		}
		if d.Amount < 0 {
			return fault.New(fault.Invalid, "invalid_payload", "dispute %s has negative amount %d", d.ID, d.Amount)
		}
		p, err := lockPaid(ctx, tx, ev, pi, charge, trig)
		if err != nil {
			return err
		}
		if d.Currency != "" && string(d.Currency) != p.Currency {
			return fault.New(fault.Invalid, "currency_mismatch", "dispute %s is in %q but purchase %s in %q", d.ID, d.Currency, p.ID, p.Currency)
		}
		from := stateOf(p)
		to, changed := Transition(from, trig)
		if !changed {
			rec.Link(p.ID)
			rec.Duplicate(fmt.Sprintf("purchase %s dispute is %q; %s changes nothing", p.ID, from.Dispute, trig))
			return nil
		}
		at := ev.At
		if p.StripeDisputeID == nil && d.ID != "" {
			p.StripeDisputeID = &d.ID
		}
		if p.DisputedAt == nil {
			p.DisputedAt = &at // also when the close overtook the open
		}
		if to.Dispute == model.DisputeWon || to.Dispute == model.DisputeLost {
			p.DisputeClosedAt = &at
		}
		p.DisputeStatus = &to.Dispute
		p.Status, p.UpdatedAt = to.Status, f.cfg.Now().UTC()
		if err := updatePurchase(ctx, tx, p); err != nil {
			return err
		}
		return f.changed(ctx, tx, ev, rec, change{from: from, p: p, reason: string(trig), disputeAmount: d.Amount, ref: d.ID})
	}
}

// recordOnly keeps a dispute event that means nothing for the purchase,
// linked to the purchase when one exists.
func (f *family) recordOnly(ctx context.Context, tx bun.Tx, rec *eventtx.Record, d *stripe.Dispute, note string) error {
	pi, charge := "", ""
	if d.PaymentIntent != nil {
		pi = d.PaymentIntent.ID
	}
	if d.Charge != nil {
		charge = d.Charge.ID
	}
	p, err := lockByPayment(ctx, tx, pi, charge)
	if err != nil {
		return err
	}
	if p != nil {
		rec.Link(p.ID)
		rec.Recorded(note)
	} else {
		rec.Recorded(note)
	}
	return nil
}
