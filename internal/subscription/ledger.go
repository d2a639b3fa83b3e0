package subscription

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/eventtx"
	"github.com/paystream/paystream/internal/ledger"
)

// post brings the ledger's postings of the invoice the event changed to
// what its row now says (ledger.InvoiceCatchUp): the split snapshot of a
// new paid invoice into the parties' pending accounts, the growth of its
// refunds and its dispute's steps reversed or held by split.Reversal. The
// store holds the invoice's row lock (inserted, or locked FOR UPDATE), so no
// other posting of it runs in between. The postings go to rec, and the
// lifecycle writes them with the transaction's one ledger.PostMany before
// the commit (the ledger's accounts locked last and in one order, for a
// batch of events of every family); the book is read with what earlier
// events of the same transaction handed over folded in.
func (f *Family) post(ctx context.Context, tx bun.Tx, ev eventtx.Event, sev Event, out Outcome, rec *eventtx.Record) error {
	inv := out.Invoice
	changed := out.InvoiceCreated || (out.Result == ResultApplied && (sev.Kind == KindRefund || sev.Kind == KindDispute))
	if inv == nil || !changed {
		return nil
	}
	s, err := ledger.InvoiceSaleOf(inv)
	if err != nil {
		return err
	}
	b, err := ledger.LoadInvoiceBook(ctx, tx, s)
	if err != nil {
		return err
	}
	for _, t := range rec.Unwritten() {
		if t.InvoiceID != s.InvoiceID {
			continue
		}
		if err := s.Fold(&b, t); err != nil {
			return err
		}
	}
	st := ledger.InvoiceState{Refunded: inv.RefundAmountCents, RefundID: deref(inv.StripeRefundID),
		Dispute: deref(inv.DisputeStatus), DisputeAmount: inv.DisputeAmountCents, DisputeID: deref(inv.StripeDisputeID)}
	ts, err := ledger.InvoiceCatchUp(s, b, st, ev.At)
	if err != nil {
		return err
	}
	rec.Post(ts...)
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
