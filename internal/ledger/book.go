package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/model"
)

// Book is what the ledger holds for one purchase, folded from its postings.
// The rules that depend on what happened before (Release, Refund, the
// dispute rules) read it; LoadBook reads it inside the caller's transaction,
// which must hold the purchase's row lock so no other posting of the
// purchase runs in between.
type Book struct {
	PurchaseID uuid.UUID
	Posted     bool  // the sale is posted
	Released   bool  // the hold is over: the sale's money lives in available (revenue)
	Refunded   int64 // the largest cumulative refund posted
	Lost       int64 // the amount of the lost dispute, 0 if none
	// Reversed is what has been given back so far, refunds and a lost
	// dispute together: min(amount, Refunded + Lost).
	Reversed int64
	// Held is each party's part of an open dispute, in disputed.
	Held split.Parts
	// Dispute is the purchase's dispute as posted: "" (none), "open", "won"
	// or "lost", as purchases.dispute_status.
	Dispute string
}

// ErrNotPosted is a rule that needs a purchase's sale posting applied to a
// purchase without one: a purchase from before the ledger, which the
// backfill posts whole from its row.
var ErrNotPosted = errors.New("ledger: the purchase has no sale posting")

// closed reports whether the purchase's dispute is closed.
func (b Book) closed() bool { return b.Dispute == model.DisputeWon || b.Dispute == model.DisputeLost }

// Fold adds t, a transaction of s's purchase built but not yet posted, to
// the book, as LoadBook would once it is posted: a caller that builds
// several postings of one purchase before one PostMany (the processor's
// batch) reads each rule's book after the ones before. The zero
// Transaction changes nothing.
func (b *Book) Fold(s Sale, t Transaction) error {
	if t.IsZero() {
		return nil
	}
	if t.PurchaseID != s.PurchaseID || b.PurchaseID != s.PurchaseID {
		return fmt.Errorf("ledger: %s folded into the book of %s for purchase %s", t.Key, b.PurchaseID, s.PurchaseID)
	}
	return b.apply(s, t)
}

// apply folds one of the purchase's transactions into the book.
func (b *Book) apply(s Sale, t Transaction) error {
	switch t.Cause {
	case CausePurchase:
		b.Posted = true
	case CauseRelease:
		b.Released = true
	case CauseRefund:
		b.Refunded = max(b.Refunded, t.Amount)
	case CauseDisputeOpened:
		// Transactions of one PostMany get ids in key order, and
		// "…:closed" sorts before "…:opened": a close wins whatever
		// order the fold sees them in.
		if b.Dispute == "" {
			b.Dispute = model.DisputeOpen
		}
	case CauseDisputeWon:
		b.Dispute = model.DisputeWon
	case CauseDisputeLost:
		b.Dispute = model.DisputeLost
		b.Lost += t.Amount
	default:
		return fmt.Errorf("ledger: %s is not a purchase's posting", t.Key)
	}
	for _, e := range t.Entries {
		if e.Account.Kind == StripeClearing {
			if t.Cause == CauseRefund || t.Cause == CauseDisputeLost {
				b.Reversed += e.Amount
			}
			continue
		}
		x, ok := s.partyOf(e.Account.Owner)
		if !ok {
			return fmt.Errorf("ledger: %s posts to %s, not a party of purchase %s", t.Key, e.Account, s.PurchaseID)
		}
		if e.Account.Kind == Disputed {
			b.Held = x.add(b.Held, e.Amount)
		}
	}
	return nil
}

// LoadBook reads the book of s's purchase. Call it in the transaction that
// will post, holding the purchase's row lock (SELECT … FOR UPDATE).
func LoadBook(ctx context.Context, db bun.IDB, s Sale) (Book, error) {
	books, err := LoadBooks(ctx, db, []Sale{s})
	if err != nil {
		return Book{}, err
	}
	return books[s.PurchaseID], nil
}

// LoadBooks reads the books of many purchases in one statement.
func LoadBooks(ctx context.Context, db bun.IDB, sales []Sale) (map[uuid.UUID]Book, error) {
	ids := make([]uuid.UUID, len(sales))
	for i, s := range sales {
		ids[i] = s.PurchaseID
	}
	txs, err := loadPurchaseTransactions(ctx, db, ids)
	if err != nil {
		return nil, err
	}
	books := make(map[uuid.UUID]Book, len(sales))
	for _, s := range sales {
		b := Book{PurchaseID: s.PurchaseID}
		for _, t := range txs[s.PurchaseID] {
			if err := b.apply(s, t); err != nil {
				return nil, err
			}
		}
		books[s.PurchaseID] = b
	}
	return books, nil
}

// txRow is one entry of a stored transaction (or the transaction alone when
// it has none).
type txRow struct {
	TxID        int64     `bun:"tx_id"`
	Key         string    `bun:"idempotency_key"`
	Cause       string    `bun:"cause"`
	PurchaseID  uuid.UUID `bun:"purchase_id,nullzero"`
	PayoutID    uuid.UUID `bun:"payout_id,nullzero"`
	InvoiceID   string    `bun:"invoice_id,nullzero"`
	Amount      int64     `bun:"amount_cents"`
	Reference   string    `bun:"reference,nullzero"`
	EffectiveAt time.Time `bun:"effective_at"`
	Owner       string    `bun:"owner,nullzero"`
	Currency    string    `bun:"currency,nullzero"`
	Kind        string    `bun:"kind,nullzero"`
	EntryAmount int64     `bun:"entry_amount"`
}

// transactionsSelect returns stored transactions with their entries, in
// posting order; the caller adds the WHERE on t.
const transactionsSelect = `
SELECT t.id AS tx_id, t.idempotency_key, t.cause, t.purchase_id, t.payout_id, t.invoice_id, t.amount_cents,
       t.reference, t.effective_at, a.owner, a.currency, a.kind, coalesce(e.amount, 0) AS entry_amount
FROM ledger_transactions t
LEFT JOIN ledger_entries e ON e.transaction_id = t.id
LEFT JOIN ledger_accounts a ON a.id = e.account_id
`

// groupRows turns rows ordered by transaction into transactions.
func groupRows(rows []txRow) []Transaction {
	var out []Transaction
	var last int64 = -1
	for _, r := range rows {
		if r.TxID != last {
			out = append(out, Transaction{Key: r.Key, Cause: Cause(r.Cause), PurchaseID: r.PurchaseID, PayoutID: r.PayoutID,
				InvoiceID: r.InvoiceID, Amount: r.Amount, Reference: r.Reference, EffectiveAt: r.EffectiveAt})
			last = r.TxID
		}
		if r.Owner != "" {
			t := &out[len(out)-1]
			t.Entries = append(t.Entries, Entry{Account: Account{Owner: r.Owner, Currency: r.Currency, Kind: Kind(r.Kind)}, Amount: r.EntryAmount})
		}
	}
	return out
}

// loadPurchaseTransactions returns the stored transactions of each
// purchase, in posting order.
func loadPurchaseTransactions(ctx context.Context, db bun.IDB, ids []uuid.UUID) (map[uuid.UUID][]Transaction, error) {
	var rows []txRow
	q := transactionsSelect + `WHERE t.purchase_id = ANY(?::uuid[]) ORDER BY t.id, e.id`
	if err := db.NewRaw(q, pgdialect.Array(ids)).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("ledger: read postings of %d purchases: %w", len(ids), err)
	}
	out := make(map[uuid.UUID][]Transaction, len(ids))
	for _, t := range groupRows(rows) {
		out[t.PurchaseID] = append(out[t.PurchaseID], t)
	}
	return out, nil
}
