package eventtx

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/ledger"
)

// Ledger postings. A route does not write to the ledger itself: it hands
// the ledger transactions its event causes to its Record (Post), and the
// lifecycle writes every event's transactions of one database transaction
// with one ledger.PostMany, after the events' claims, right before the
// commit. So the ledger's accounts are the last locks a processor
// transaction takes, all in one statement and in the ledger's global order
// (docs/ledger.md: the order holds per PostMany call, not across calls),
// and the hottest rows of the database — the platform's accounts, which
// every sale of a currency touches — are held only for that statement, the
// entries' insert and the commit. A batch's events share the one call.

// Post adds ts to what the event writes to the ledger; the zero
// Transaction (a rule with nothing to post) is dropped. The lifecycle
// writes them in the event's transaction, after the route, so a route
// that reads a book after posting reads it through Book.
func (r *Record) Post(ts ...ledger.Transaction) {
	for _, t := range ts {
		if !t.IsZero() {
			r.postings = append(r.postings, t)
		}
	}
}

// Unwritten returns, in order, the ledger transactions that earlier events
// of the same database transaction (a batch) and this event handed over,
// which the lifecycle writes only before the commit: a rule that reads a
// book from the database folds those of its subject in, so it sees what
// the events before it posted (Book does it for a purchase).
func (r *Record) Unwritten() []ledger.Transaction {
	var out []ledger.Transaction
	if r.tx != nil {
		out = append(out, r.tx.postings...)
	}
	return append(out, r.postings...)
}

// Book returns the ledger book of s's purchase as the event sees it: what
// the database holds, folded with its Unwritten transactions. Call it
// holding the purchase's row lock, like ledger.LoadBook.
func (r *Record) Book(ctx context.Context, db bun.IDB, s ledger.Sale) (ledger.Book, error) {
	b, err := ledger.LoadBook(ctx, db, s)
	if err != nil {
		return ledger.Book{}, err
	}
	for _, t := range r.Unwritten() {
		if t.PurchaseID != s.PurchaseID {
			continue
		}
		if err := b.Fold(s, t); err != nil {
			return ledger.Book{}, err
		}
	}
	return b, nil
}

// txLedger is the ledger postings of one database transaction's events
// applied so far: what Book folds for the next event. An event's postings
// join it only once the event succeeded, so a failed event (rolled back to
// its savepoint) leaves nothing behind.
type txLedger struct {
	postings []ledger.Transaction
}

// newRecord returns the record of the next event of the transaction tl
// (nil: an event in a transaction of its own).
func newRecord(tl *txLedger) *Record { return &Record{tx: tl} }

// keep adds a succeeded event's postings to the transaction's.
func (tl *txLedger) keep(rec *Record) {
	if tl != nil && rec != nil {
		tl.postings = append(tl.postings, rec.postings...)
	}
}

// post writes the ledger postings of recs, in order, with one
// ledger.PostMany inside tx, and counts them (Config.Ledger) once the
// transaction committed. A nil record is skipped. Its error fails the
// transaction as a whole.
func (h *Handler) post(ctx context.Context, tx bun.Tx, recs []*Record) error {
	var ts []ledger.Transaction
	for _, r := range recs {
		if r != nil {
			ts = append(ts, r.postings...)
		}
	}
	if len(ts) == 0 {
		return nil
	}
	out, err := ledger.PostMany(ctx, tx, ts)
	if err != nil {
		return fmt.Errorf("post %d ledger transactions: %w", len(ts), err)
	}
	if m := h.cfg.Ledger; m != nil {
		k := 0
		for _, r := range recs {
			if r == nil || len(r.postings) == 0 {
				continue
			}
			mine, outs := r.postings, out[k:k+len(r.postings)]
			k += len(mine)
			r.AfterCommit(func() { m.Observe(mine, outs) })
		}
	}
	return nil
}
