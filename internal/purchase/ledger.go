package purchase

import (
	"context"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/eventtx"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/model"
)

// The ledger side of a purchase change. Each change that moves money hands
// its ledger transaction to the event's record; the lifecycle posts every
// event's transactions of the database transaction with one PostMany just
// before the commit (eventtx/ledger.go), on both paths:
//
//	the purchase became paid (a paid checkout, an async payment succeeding,
//	a pending purchase completed)                  → ledger.PurchaseCompleted
//	its cumulative refund grew                     → ledger.Refund
//	its dispute opened / was won / was lost        → ledger.DisputeOpened / Won / Lost
//
// The rules after the sale read the purchase's book (its postings so far,
// with those of earlier events of the same batch not written yet) under the
// purchase's row lock, which every route holds; they post nothing when the
// book says it was posted already, so a change the ledger has seen (another
// event id, an out-of-order close) posts nothing twice. docs/ledger.md has
// the rules.

// post hands c's ledger transaction to rec. to is the state after c.
func (f *family) post(ctx context.Context, tx bun.Tx, ev eventtx.Event, rec *eventtx.Record, c change, to State) error {
	p := c.p
	if !paid(to.Status) {
		return nil
	}
	s, err := ledger.SaleOf(p)
	if err != nil {
		return fmt.Errorf("purchase %s: %w", p.ID, err)
	}
	if !paid(c.from.Status) {
		// Paid by this event: its sale. One event is one trigger, so it
		// neither refunds nor disputes.
		t, err := ledger.PurchaseCompleted(s)
		if err != nil {
			return err
		}
		rec.Post(t)
		return nil
	}
	var rule func(ledger.Book) (ledger.Transaction, error)
	switch {
	case c.refundDelta > 0:
		rule = func(b ledger.Book) (ledger.Transaction, error) {
			return ledger.Refund(s, b, p.RefundAmountCents, c.ref, ev.At)
		}
	case to.Dispute != c.from.Dispute && to.Dispute == model.DisputeOpen:
		rule = func(b ledger.Book) (ledger.Transaction, error) {
			return ledger.DisputeOpened(s, b, c.disputeAmount, c.ref, ev.At)
		}
	case to.Dispute != c.from.Dispute && to.Dispute == model.DisputeWon:
		rule = func(b ledger.Book) (ledger.Transaction, error) { return ledger.DisputeWon(s, b, c.ref, ev.At) }
	case to.Dispute != c.from.Dispute && to.Dispute == model.DisputeLost:
		rule = func(b ledger.Book) (ledger.Transaction, error) {
			return ledger.DisputeLost(s, b, c.disputeAmount, c.ref, ev.At)
		}
	default:
		return nil // no money moved (a refund timestamp, an access-only change)
	}
	b, err := rec.Book(ctx, tx, s)
	if err != nil {
		return err
	}
	t, err := rule(b)
	if errors.Is(err, ledger.ErrNotPosted) {
		// Paid before the ledger existed: `paystream ledger backfill`
		// posts the purchase whole from its row, refunds and dispute
		// included, so this change is not lost, only posted later.
		f.log.Info("purchase has no sale posting; its ledger change is left to the backfill",
			"stripe_event_id", ev.ID, "purchase_id", p.ID, "trigger", c.reason)
		return nil
	}
	if err != nil {
		return fmt.Errorf("purchase %s: %w", p.ID, err)
	}
	rec.Post(t)
	return nil
}

// postFast hands the sale of each purchase the set-based path created to
// its event's record.
func postFast(applied []*fastCheckout) error {
	for _, fc := range applied {
		s, err := ledger.SaleOf(fc.p)
		if err != nil {
			return fmt.Errorf("purchase %s: %w", fc.p.ID, err)
		}
		t, err := ledger.PurchaseCompleted(s)
		if err != nil {
			return err
		}
		fc.rec.Post(t)
	}
	return nil
}
