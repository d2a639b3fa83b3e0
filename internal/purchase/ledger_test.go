package purchase_test

import (
	"context"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/model"
)

// The creator's share belongs to the content's creator when the purchase
// was paid: a content item that changes hands afterwards moves nothing, a
// refund takes back from the creator who sold, and a purchase paid after
// the change pays the new creator.
func TestTheCreatorWhoSoldKeepsTheSale(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		sold, later := newWorld(cat, "sold"), newWorld(cat, "later")
		e.mustHandle(sold.checkout(t, "checkout.session.completed", "evt_c1", t0, ""), handling.Applied)
		e.mustHandle(later.checkout(t, "checkout.session.completed", "evt_c2", t0, "unpaid"), handling.Applied)

		if _, err := e.db.ExecContext(context.Background(), `UPDATE content SET creator_id = 'creator_new' WHERE id = ?`, cat.content); err != nil {
			t.Fatal(err)
		}
		e.mustHandle(sold.refund(t, "evt_r1", t0.Add(time.Hour), stripefixture.Refund{ID: "re_1", Amount: 1000}), handling.Applied)
		e.mustHandle(later.checkout(t, "checkout.session.async_payment_succeeded", "evt_s2", t0.Add(time.Hour), ""), handling.Applied)

		p := e.purchaseBySession(sold.session)
		if p.CreatorID != cat.creator {
			t.Errorf("sold purchase's creator = %q, want %q", p.CreatorID, cat.creator)
		}
		// wantLedger fails on a posting to any creator but p.CreatorID.
		e.wantLedger(p, []string{"purchase:P", "refund:P:1000"},
			map[string]int64{"platform/stripe_clearing": -1999, "platform/pending": 199, "creator/pending": 1800})
		q := e.purchaseBySession(later.session)
		if q.CreatorID != "creator_new" {
			t.Errorf("purchase paid after the change: creator %q, want creator_new", q.CreatorID)
		}
		e.wantLedger(q, []string{"purchase:P"},
			map[string]int64{"platform/stripe_clearing": -2999, "platform/pending": 300, "creator/pending": 2699})
		var outboxCreator string
		if err := e.db.NewRaw(`SELECT payload->'data'->>'creator_id' FROM outbox WHERE aggregate_id = ? AND subject = 'purchases.refunded'`, p.ID).
			Scan(context.Background(), &outboxCreator); err != nil || outboxCreator != cat.creator {
			t.Errorf("refund event names creator %q (%v), want %q", outboxCreator, err, cat.creator)
		}
	})
}

// A dispute's amount moves money: one that is negative, or in another
// currency than its purchase, is refused as invalid, with nothing written.
func TestDisputeRefusesABadAmountOrCurrency(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		w := newWorld(e.seedContent(), "baddispute")
		e.mustHandle(w.checkout(t, "checkout.session.completed", "evt_c", t0, ""), handling.Applied)
		for _, c := range []struct {
			id     string
			d      stripefixture.Dispute
			reason string
		}{
			{"evt_neg", stripefixture.Dispute{Amount: -1}, "invalid_payload"},
			{"evt_eur", stripefixture.Dispute{Amount: 2999, Currency: "eur"}, "currency_mismatch"},
		} {
			c.d.DisputeID, c.d.ChargeID, c.d.PaymentIntentID = "du_x", w.charge, w.pi
			b, err := stripefixture.DisputeEvent("charge.dispute.created", stripefixture.Meta{EventID: c.id, Created: t0}, c.d)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.handle(toEvent(t, b)); fault.CodeOf(err) != fault.Invalid || fault.ReasonOf(err) != c.reason {
				t.Errorf("%s: %v, want invalid %s", c.id, err, c.reason)
			}
		}
		p := e.purchaseBySession(w.session)
		if p.DisputeStatus != nil {
			t.Errorf("dispute status %q after refused disputes", *p.DisputeStatus)
		}
		e.wantLedger(p, []string{"purchase:P"},
			map[string]int64{"platform/stripe_clearing": -2999, "platform/pending": 300, "creator/pending": 2699})
	})
}

// A purchase paid before the ledger existed has no sale posting: its
// refunds and disputes still apply to the purchase, and their postings are
// left to the backfill, which posts the purchase whole from its row.
func TestAPurchaseFromBeforeTheLedgerIsLeftToTheBackfill(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		w := newWorld(cat, "old")
		at := t0.Add(-24 * time.Hour)
		pi := w.pi
		old := model.Purchase{ID: uuidV7(t), CustomerID: w.customer, ContentID: cat.content, OrganizationID: cat.org,
			AmountPaidCents: 2999, Currency: "usd", PlatformFeeCents: 300, CreatorPayoutCents: 2699, PlatformFeeBps: 1000,
			StripeCheckoutSessionID: w.session, StripePaymentIntentID: &pi, Status: model.PurchaseCompleted, PurchasedAt: &at,
			CreatedAt: at, UpdatedAt: at}
		e.insert(&old)

		e.mustHandle(w.refund(t, "evt_r", t0, stripefixture.Refund{ID: "re_old", Amount: 1000}), handling.Applied)
		e.mustHandle(w.dispute(t, "charge.dispute.created", "evt_d", t0.Add(time.Hour), "needs_response"), handling.Applied)
		p := e.purchaseBySession(w.session)
		if p.RefundAmountCents != 1000 || p.DisputeStatus == nil || *p.DisputeStatus != model.DisputeOpen {
			t.Fatalf("purchase = %+v", p)
		}
		if p.CreatorID != cat.creator {
			t.Errorf("creator_id %q, want the content's %q (filled by the database)", p.CreatorID, cat.creator)
		}
		e.wantLedger(p, nil, map[string]int64{})

		// What the backfill does: the sale, then the row's refunds and
		// dispute, on the book as it grows, in one transaction.
		s, err := ledger.SaleOf(&p)
		if err != nil {
			t.Fatal(err)
		}
		err = e.db.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
			b := ledger.Book{PurchaseID: p.ID}
			var ts []ledger.Transaction
			for _, rule := range []func(ledger.Book) (ledger.Transaction, error){
				func(ledger.Book) (ledger.Transaction, error) { return ledger.PurchaseCompleted(s) },
				func(b ledger.Book) (ledger.Transaction, error) {
					return ledger.Refund(s, b, p.RefundAmountCents, "re_old", t0)
				},
				func(b ledger.Book) (ledger.Transaction, error) {
					return ledger.DisputeOpened(s, b, 2999, "du_old", t0)
				},
			} {
				tr, err := rule(b)
				if err != nil {
					return err
				}
				if err := b.Fold(s, tr); err != nil {
					return err
				}
				ts = append(ts, tr)
			}
			_, err := ledger.PostMany(ctx, tx, ts)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		// Refunded 1000 (101 / 0 / 899), the rest (199 / 0 / 1800) held.
		// (One PostMany gives its transactions ids in key order.)
		e.wantLedger(p, []string{"dispute:P:opened", "purchase:P", "refund:P:1000"},
			map[string]int64{"platform/stripe_clearing": -1999, "platform/disputed": 199, "creator/disputed": 1800})
		// From here on the processor posts as for any purchase.
		e.mustHandle(w.dispute(t, "charge.dispute.closed", "evt_won", t0.Add(2*time.Hour), "won"), handling.Applied)
		e.wantLedger(p, []string{"dispute:P:opened", "purchase:P", "refund:P:1000", "dispute:P:closed"},
			map[string]int64{"platform/stripe_clearing": -1999, "platform/pending": 199, "creator/pending": 1800})
	})
}

// Events of one purchase in one batch post on the book as the earlier
// events of the batch left it, though none is written before the commit:
// the sale then two refunds post the refunds' increments, the dispute holds
// what is left, and the lost close gives that back.
func TestABatchPostsEachEventOnTheBookBeforeIt(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		w := newWorld(e.seedContent(), "onebatch")
		r1 := stripefixture.Refund{ID: "re_1", Amount: 1000}
		batch := []stripeevent.Event{
			w.checkout(t, "checkout.session.completed", "evt_c", t0, ""),
			w.refund(t, "evt_r1", t0.Add(time.Hour), r1),
			w.refund(t, "evt_r2", t0.Add(2*time.Hour), stripefixture.Refund{ID: "re_2", Amount: 500}, r1),
			w.dispute(t, "charge.dispute.created", "evt_d1", t0.Add(3*time.Hour), "needs_response"),
			w.dispute(t, "charge.dispute.closed", "evt_d2", t0.Add(4*time.Hour), "lost"),
		}
		for i, r := range e.h.HandleBatch(context.Background(), batch) {
			if r.Err != nil || r.Outcome != handling.Applied {
				t.Fatalf("event %d: %s, %v", i, r.Outcome, r.Err)
			}
		}
		p := e.purchaseBySession(w.session)
		// One PostMany for the batch: ids in key order.
		e.wantLedger(p, []string{"dispute:P:closed", "dispute:P:opened", "purchase:P", "refund:P:1000", "refund:P:1500"}, map[string]int64{})
		var held int64
		if err := e.db.NewRaw(`SELECT e.amount FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
			JOIN ledger_accounts a ON a.id = e.account_id
			WHERE t.idempotency_key = ? AND a.owner LIKE 'creator:%' AND a.kind = 'disputed'`, "dispute:"+p.ID.String()+":opened").
			Scan(context.Background(), &held); err != nil {
			t.Fatal(err)
		}
		// 1499 left of 2999 after 1500 refunded; the creator's part of it
		// is Reversal(2999) − Reversal(1500) = 2699 − 1349 = 1350.
		if held != 1350 {
			t.Errorf("creator's part of the dispute hold = %d, want 1350", held)
		}
	})
}
