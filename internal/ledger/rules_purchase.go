package ledger

import (
	"fmt"
	"time"

	"github.com/paystream/paystream/internal/split"
)

// The posting rules of a purchase. Each is a pure function of the sale, its
// book (what was posted before) and the event; each returns the zero
// Transaction when the event changes nothing in the ledger, so the caller
// posts whatever it gets. docs/ledger.md draws them.

// PurchaseCompleted posts a sale: the amount arrives at Stripe and each
// party's share goes to its pending account.
func PurchaseCompleted(s Sale) (Transaction, error) {
	if err := s.validate(); err != nil {
		return Transaction{}, err
	}
	m := moves{}
	sh := s.Split.Shares()
	for _, x := range parties {
		m.move(s.clearing(), s.account(x, Pending), x.part(sh))
	}
	return Transaction{
		Key: "purchase:" + s.PurchaseID.String(), Cause: CausePurchase, PurchaseID: s.PurchaseID,
		Amount: s.Split.Amount, EffectiveAt: s.PurchasedAt, Entries: m.entries(),
	}, nil
}

// Release ends a sale's hold: what each party still has of it in pending
// moves to available (the platform's to revenue). Whatever an open dispute
// holds stays in disputed and returns to available when the dispute is won.
// A purchase is released once; a fully refunded one is released with no
// entries, which still records that its hold is over.
func Release(s Sale, b Book, at time.Time) (Transaction, error) {
	if err := ready(s, b); err != nil || b.Released {
		return Transaction{}, err
	}
	given, err := split.Reversal(s.Split, b.Reversed)
	if err != nil {
		return Transaction{}, fmt.Errorf("ledger: release of %s: %w", s.PurchaseID, err)
	}
	pending := s.Split.Shares().Sub(given).Sub(b.Held)
	m := moves{}
	for _, x := range parties {
		m.move(s.home(x, false), s.home(x, true), x.part(pending))
	}
	return Transaction{
		Key: "release:" + s.PurchaseID.String(), Cause: CauseRelease, PurchaseID: s.PurchaseID,
		Amount: max(pending.Sum(), 0), EffectiveAt: at, Entries: m.entries(),
	}, nil
}

// Refund posts a refund. refunded is the purchase's cumulative refunded
// amount after the event (purchases.refund_amount_cents; Stripe reports the
// charge's cumulative amount_refunded), so redeliveries, second event ids
// and out-of-order refund events post each cent once: nothing is posted
// unless refunded grows. Each party gives back its part of the increase,
// from where the sale's money lives (pending, or available after the hold),
// computed from the cumulative total (split.Reversal) so rounding never
// drifts. Refunds and a lost dispute together never give back more than
// the amount paid.
func Refund(s Sale, b Book, refunded int64, refundID string, at time.Time) (Transaction, error) {
	if refunded < 0 {
		return Transaction{}, fmt.Errorf("ledger: refund of %s: negative amount %d", s.PurchaseID, refunded)
	}
	refunded = min(refunded, s.Split.Amount) // a refund beyond the purchase counts as the whole purchase
	if err := ready(s, b); err != nil || refunded <= b.Refunded {
		return Transaction{}, err
	}
	m := moves{}
	if err := giveBack(m, s, b, min(s.Split.Amount, b.Reversed+refunded-b.Refunded)); err != nil {
		return Transaction{}, err
	}
	return Transaction{
		Key: fmt.Sprintf("refund:%s:%d", s.PurchaseID, refunded), Cause: CauseRefund, PurchaseID: s.PurchaseID,
		Amount: refunded, Reference: refundID, EffectiveAt: at, Entries: m.entries(),
	}, nil
}

// DisputeOpened moves each party's part of the disputed amount from where
// the sale's money lives to disputed. A purchase has one dispute: a second
// opening, or one after the close, posts nothing. The amount held is capped
// by what has not been given back already.
func DisputeOpened(s Sale, b Book, amount int64, disputeID string, at time.Time) (Transaction, error) {
	if amount < 0 {
		return Transaction{}, fmt.Errorf("ledger: dispute of %s: negative amount %d", s.PurchaseID, amount)
	}
	if err := ready(s, b); err != nil || b.Dispute != "" {
		return Transaction{}, err
	}
	held := min(amount, s.Split.Amount-b.Reversed)
	before, err := split.Reversal(s.Split, b.Reversed)
	if err != nil {
		return Transaction{}, fmt.Errorf("ledger: dispute of %s: %w", s.PurchaseID, err)
	}
	after, err := split.Reversal(s.Split, b.Reversed+held)
	if err != nil {
		return Transaction{}, fmt.Errorf("ledger: dispute of %s: %w", s.PurchaseID, err)
	}
	parts := after.Sub(before)
	m := moves{}
	for _, x := range parties {
		m.move(s.home(x, b.Released), s.account(x, Disputed), x.part(parts))
	}
	return Transaction{
		Key: "dispute:" + s.PurchaseID.String() + ":opened", Cause: CauseDisputeOpened, PurchaseID: s.PurchaseID,
		Amount: amount, Reference: disputeID, EffectiveAt: at, Entries: m.entries(),
	}, nil
}

// DisputeWon returns what the dispute held to where the sale's money lives.
// A close that overtook its opening posts a transaction with no entries,
// which still closes the dispute.
func DisputeWon(s Sale, b Book, disputeID string, at time.Time) (Transaction, error) {
	if err := ready(s, b); err != nil || b.closed() {
		return Transaction{}, err
	}
	m := moves{}
	unhold(m, s, b)
	return Transaction{
		Key: "dispute:" + s.PurchaseID.String() + ":closed", Cause: CauseDisputeWon, PurchaseID: s.PurchaseID,
		Amount: max(b.Held.Sum(), 0), Reference: disputeID, EffectiveAt: at, Entries: m.entries(),
	}, nil
}

// DisputeLost gives the lost amount back like a refund: what the dispute
// held returns to where the sale's money lives, and each party gives back
// its part of the amount from there. amount is the dispute's amount as the
// close reports it.
func DisputeLost(s Sale, b Book, amount int64, disputeID string, at time.Time) (Transaction, error) {
	if amount < 0 {
		return Transaction{}, fmt.Errorf("ledger: dispute of %s: negative amount %d", s.PurchaseID, amount)
	}
	if err := ready(s, b); err != nil || b.closed() {
		return Transaction{}, err
	}
	m := moves{}
	unhold(m, s, b)
	if err := giveBack(m, s, b, min(s.Split.Amount, b.Reversed+amount)); err != nil {
		return Transaction{}, err
	}
	return Transaction{
		Key: "dispute:" + s.PurchaseID.String() + ":closed", Cause: CauseDisputeLost, PurchaseID: s.PurchaseID,
		Amount: amount, Reference: disputeID, EffectiveAt: at, Entries: m.entries(),
	}, nil
}

// ready checks that b is s's book and that the sale is posted.
func ready(s Sale, b Book) error {
	if err := s.validate(); err != nil {
		return err
	}
	if b.PurchaseID != s.PurchaseID {
		return fmt.Errorf("ledger: book of %s used for purchase %s", b.PurchaseID, s.PurchaseID)
	}
	if !b.Posted {
		return fmt.Errorf("%w: purchase %s", ErrNotPosted, s.PurchaseID)
	}
	return nil
}

// unhold moves what the dispute holds back to where the sale's money lives.
func unhold(m moves, s Sale, b Book) {
	for _, x := range parties {
		m.move(s.account(x, Disputed), s.home(x, b.Released), x.part(b.Held))
	}
}

// giveBack takes each party's part of the growth of the reversed total,
// from b.Reversed to reversed, from where the sale's money lives and hands
// it back through Stripe.
func giveBack(m moves, s Sale, b Book, reversed int64) error {
	before, err := split.Reversal(s.Split, b.Reversed)
	if err != nil {
		return fmt.Errorf("ledger: reversal of %s: %w", s.PurchaseID, err)
	}
	after, err := split.Reversal(s.Split, reversed)
	if err != nil {
		return fmt.Errorf("ledger: reversal of %s: %w", s.PurchaseID, err)
	}
	parts := after.Sub(before)
	for _, x := range parties {
		m.move(s.home(x, b.Released), s.clearing(), x.part(parts))
	}
	return nil
}
