package ledger

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
)

// Cause is what a transaction records. The database ties each cause to the
// form of its idempotency key (ledger_transactions_key_of_cause).
type Cause string

// Causes.
const (
	CausePurchase         Cause = "purchase"          // purchase:<purchase>
	CauseRelease          Cause = "release"           // release:<purchase>
	CauseRefund           Cause = "refund"            // refund:<purchase>:<cumulative refunded>
	CauseDisputeOpened    Cause = "dispute_opened"    // dispute:<purchase>:opened
	CauseDisputeWon       Cause = "dispute_won"       // dispute:<purchase>:closed
	CauseDisputeLost      Cause = "dispute_lost"      // dispute:<purchase>:closed
	CausePayoutCreated    Cause = "payout_created"    // payout:<payout>
	CausePayoutPaid       Cause = "payout_paid"       // payout:<payout>:settled
	CausePayoutFailed     Cause = "payout_failed"     // payout:<payout>:settled
	CauseTransferReversed Cause = "transfer_reversed" // payout:<payout>:reversed:<cumulative reversed>
)

// Causes of a subscription invoice's postings (rules_invoice.go): the
// purchase causes, for an invoice (Transaction.InvoiceID, Stripe's in_…).
const (
	CauseInvoice              Cause = "invoice"                // invoice:<invoice>
	CauseInvoiceRelease       Cause = "invoice_release"        // release:<invoice>
	CauseInvoiceRefund        Cause = "invoice_refund"         // refund:<invoice>:<cumulative refunded>
	CauseInvoiceDisputeOpened Cause = "invoice_dispute_opened" // dispute:<invoice>:opened
	CauseInvoiceDisputeWon    Cause = "invoice_dispute_won"    // dispute:<invoice>:closed
	CauseInvoiceDisputeLost   Cause = "invoice_dispute_lost"   // dispute:<invoice>:closed
)

func (c Cause) aboutPayout() bool {
	return c == CausePayoutCreated || c == CausePayoutPaid || c == CausePayoutFailed || c == CauseTransferReversed
}

func (c Cause) valid() bool {
	switch c {
	case CausePurchase, CauseRelease, CauseRefund, CauseDisputeOpened, CauseDisputeWon, CauseDisputeLost:
		return true
	}
	return c.aboutPayout() || c.aboutInvoice()
}

// Entry is one signed amount on one account: positive adds to its balance.
type Entry struct {
	Account Account
	Amount  int64
}

// Transaction is one posting, built by a posting rule. The zero Transaction
// (IsZero) means the rule had nothing to post; Post and PostMany skip it, so
// a caller never needs to test for it.
type Transaction struct {
	Key         string    // idempotency key; the cause determines it (see Cause)
	Cause       Cause     // what happened
	PurchaseID  uuid.UUID // the purchase it is about (uuid.Nil for payouts)
	PayoutID    uuid.UUID // the payout it is about (uuid.Nil for purchases)
	InvoiceID   string    // the subscription invoice it is about (in_…; "" for purchases and payouts)
	Amount      int64     // the money the cause reported (ledger_transactions.amount_cents)
	Reference   string    // the Stripe object behind it (re_…, du_…, tr_…), "" if none
	EffectiveAt time.Time // when it happened (a sale: purchased_at)
	// Entries sum to zero per currency; each amount is non-zero. A
	// transaction may have none: a release of a fully refunded purchase
	// still records that the purchase was released.
	Entries []Entry
	// NoOverdraft names accounts this transaction must leave at zero or
	// above; PostMany checks it under the accounts' locks and fails the
	// call with ErrOverdraft otherwise. A payout sets it on the payee's
	// available account, so a refund that raced the payout run cannot make
	// it transfer more than was available. It is a precondition, not
	// content: a re-post is compared without it.
	NoOverdraft []Account
}

// ErrOverdraft is a transaction that would leave one of its NoOverdraft
// accounts below zero. The call's statements before the check have run, so
// the caller rolls its transaction back (as on any error) and tries again
// with the balance as it is now.
var ErrOverdraft = errors.New("ledger: the posting would overdraw an account")

// IsZero reports whether t is the zero Transaction: nothing to post.
func (t Transaction) IsZero() bool { return t.Key == "" && t.Cause == "" && len(t.Entries) == 0 }

// ErrUnbalanced is a transaction whose entries do not sum to zero in some
// currency. The database refuses it at commit too.
var ErrUnbalanced = errors.New("ledger: transaction does not sum to zero")

// Validate checks what the database would refuse, so a bug fails with a
// clear message before any statement runs.
func (t Transaction) Validate() error {
	if t.Key == "" {
		return errors.New("ledger: transaction without idempotency key")
	}
	if !t.Cause.valid() {
		return fmt.Errorf("ledger: %s: unknown cause %q", t.Key, t.Cause)
	}
	if want := t.key(); t.Key != want {
		return fmt.Errorf("ledger: key %q does not match its cause %s (want %q)", t.Key, t.Cause, want)
	}
	if t.Amount < 0 {
		return fmt.Errorf("ledger: %s: negative amount %d", t.Key, t.Amount)
	}
	if t.EffectiveAt.IsZero() {
		return fmt.Errorf("ledger: %s: no effective time", t.Key)
	}
	sums := map[string]int64{}
	for _, e := range t.Entries {
		if err := e.Account.validate(); err != nil {
			return fmt.Errorf("%w (in %s)", err, t.Key)
		}
		if e.Amount == 0 {
			return fmt.Errorf("ledger: %s: zero entry on %s", t.Key, e.Account)
		}
		sums[e.Account.Currency] += e.Amount
	}
	for cur, s := range sums {
		if s != 0 {
			return fmt.Errorf("%w: %s sums to %d in %s", ErrUnbalanced, t.Key, s, cur)
		}
	}
	return nil
}

// key returns the idempotency key t's cause and subject determine; the
// database holds the same rule as a CHECK.
func (t Transaction) key() string {
	p, o := t.PurchaseID.String(), t.PayoutID.String()
	switch t.Cause {
	case CausePurchase:
		return "purchase:" + p
	case CauseRelease:
		return "release:" + p
	case CauseRefund:
		return fmt.Sprintf("refund:%s:%d", p, t.Amount)
	case CauseDisputeOpened:
		return "dispute:" + p + ":opened"
	case CauseDisputeWon, CauseDisputeLost:
		return "dispute:" + p + ":closed"
	case CausePayoutCreated:
		return "payout:" + o
	case CausePayoutPaid, CausePayoutFailed:
		return "payout:" + o + ":settled"
	case CauseTransferReversed:
		return fmt.Sprintf("payout:%s:reversed:%d", o, t.Amount)
	}
	return t.invoiceKey()
}

// sameContent reports whether u records what t records: the same cause,
// subject, amount and entries (in any order). The effective time and the
// reference may differ: Stripe may report one change in two events with
// different times.
func (t Transaction) sameContent(u Transaction) bool {
	if t.Key != u.Key || t.Cause != u.Cause || t.PurchaseID != u.PurchaseID || t.PayoutID != u.PayoutID ||
		t.InvoiceID != u.InvoiceID || t.Amount != u.Amount {
		return false
	}
	a, b := sortedEntries(t.Entries), sortedEntries(u.Entries)
	return slices.Equal(a, b)
}

func sortedEntries(es []Entry) []Entry {
	s := slices.Clone(es)
	slices.SortFunc(s, func(x, y Entry) int {
		if c := compareAccounts(x.Account, y.Account); c != 0 {
			return c
		}
		return int(min(max(x.Amount-y.Amount, -1), 1))
	})
	return s
}

// moves accumulates a rule's movements and nets them per account, so a
// transaction has at most one entry per account and none of zero.
type moves map[Account]int64

// move takes amount from one account and gives it to another.
func (m moves) move(from, to Account, amount int64) {
	if amount == 0 {
		return
	}
	m[from] -= amount
	m[to] += amount
}

// entries returns the non-zero net amounts in account order.
func (m moves) entries() []Entry {
	var es []Entry
	for a, v := range m {
		if v != 0 {
			es = append(es, Entry{Account: a, Amount: v})
		}
	}
	slices.SortFunc(es, func(x, y Entry) int { return compareAccounts(x.Account, y.Account) })
	return es
}
