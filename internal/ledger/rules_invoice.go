package ledger

import (
	"crypto/sha1"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/model"
)

// The posting rules of a subscription invoice. A paid invoice is a sale
// like a purchase: its split snapshot (subscription_invoices) goes to the
// parties' pending accounts, the hold releases it, refunds and a lost
// dispute of its charge give back each party's part by split.Reversal, and
// a dispute holds it in disputed. So each invoice rule is the purchase rule
// of the same name applied to the invoice's sale, and only the transaction's
// subject differs: its causes (CauseInvoice…) and keys name the invoice.
// Using the very same rules keeps the money of an invoice and of a purchase
// of the same amount and split identical, rounding included.

// InvoiceSale is what the posting rules need of a paid subscription
// invoice: its split snapshot and who the parties are.
type InvoiceSale struct {
	InvoiceID      string // Stripe's in_…
	Currency       string
	Split          split.Split // Amount and the three shares (Terms unused)
	OrganizationID uuid.UUID
	// CreatorID is the plan's creator; "" for an organization plan, whose
	// creator share is 0 (the organization takes it).
	CreatorID string
	PaidAt    time.Time
}

// InvoiceSaleOf returns the sale of a recorded invoice.
func InvoiceSaleOf(inv *model.SubscriptionInvoice) (InvoiceSale, error) {
	s := InvoiceSale{
		InvoiceID: inv.ID, Currency: inv.Currency, OrganizationID: inv.OrganizationID, PaidAt: inv.PaidAt,
		Split: split.Split{Amount: inv.AmountPaidCents, Platform: inv.PlatformFeeCents,
			Organization: inv.OrganizationFeeCents, Creator: inv.CreatorPayoutCents},
	}
	if inv.CreatorID != nil {
		s.CreatorID = *inv.CreatorID
	}
	return s, s.validate()
}

var invoiceIDRE = regexp.MustCompile(`^in_[A-Za-z0-9_]+$`)

func (s InvoiceSale) validate() error {
	if !invoiceIDRE.MatchString(s.InvoiceID) {
		return fmt.Errorf("ledger: invoice id %q is not a Stripe invoice id (in_…)", s.InvoiceID)
	}
	if s.CreatorID == "" && s.Split.Creator != 0 {
		return fmt.Errorf("ledger: invoice %s: an organization plan's invoice pays its creators' share to the organization, not %d to a creator",
			s.InvoiceID, s.Split.Creator)
	}
	return s.sale().validate()
}

// orgPlanCreator stands for the creator of an organization plan's invoice
// inside the purchase rules, which want one. Its share is 0, so no entry
// ever names it (the rules post no zero amounts); it is no valid owner, so
// one that did would be refused.
const orgPlanCreator = "\x00organization-plan"

// sale is the invoice as the purchase rules read it. Its PurchaseID is a
// stand-in derived from the invoice id (the rules check that a book belongs
// to its sale by it); retag replaces it in what they return.
func (s InvoiceSale) sale() Sale {
	creator := s.CreatorID
	if creator == "" {
		creator = orgPlanCreator
	}
	return Sale{PurchaseID: invoiceStandIn(s.InvoiceID), Currency: s.Currency, Split: s.Split,
		OrganizationID: s.OrganizationID, CreatorID: creator, PurchasedAt: s.PaidAt}
}

// invoiceStandIn is the PurchaseID an invoice has inside the purchase
// rules; it is never stored.
func invoiceStandIn(invoiceID string) uuid.UUID {
	return uuid.NewHash(sha1.New(), uuid.NameSpaceURL, []byte("paystream:invoice:"+invoiceID), 5)
}

// invoiceCause is the invoice cause of each purchase cause, and purchaseCause
// the other way.
var (
	invoiceCause = map[Cause]Cause{ // read-only
		CausePurchase: CauseInvoice, CauseRelease: CauseInvoiceRelease, CauseRefund: CauseInvoiceRefund,
		CauseDisputeOpened: CauseInvoiceDisputeOpened, CauseDisputeWon: CauseInvoiceDisputeWon,
		CauseDisputeLost: CauseInvoiceDisputeLost,
	}
	purchaseCause = func() map[Cause]Cause {
		m := make(map[Cause]Cause, len(invoiceCause))
		for p, i := range invoiceCause {
			m[i] = p
		}
		return m
	}()
)

func (c Cause) aboutInvoice() bool { _, ok := purchaseCause[c]; return ok }

// invoiceKey is the idempotency key of an invoice's transaction: the
// purchase key's form with the invoice id in the purchase's place. The
// database holds the same rule (ledger_transactions_key_of_cause).
func (t Transaction) invoiceKey() string {
	i := t.InvoiceID
	if i == "" || t.PurchaseID != uuid.Nil || t.PayoutID != uuid.Nil {
		return ""
	}
	switch t.Cause {
	case CauseInvoice:
		return "invoice:" + i
	case CauseInvoiceRelease:
		return "release:" + i
	case CauseInvoiceRefund:
		return fmt.Sprintf("refund:%s:%d", i, t.Amount)
	case CauseInvoiceDisputeOpened:
		return "dispute:" + i + ":opened"
	case CauseInvoiceDisputeWon, CauseInvoiceDisputeLost:
		return "dispute:" + i + ":closed"
	}
	return ""
}

// retag turns what a purchase rule built for s.sale() into the invoice's
// transaction. The zero Transaction stays zero.
func (s InvoiceSale) retag(t Transaction, err error) (Transaction, error) {
	if err != nil {
		return Transaction{}, fmt.Errorf("invoice %s: %w", s.InvoiceID, err)
	}
	if t.IsZero() {
		return t, nil
	}
	c, ok := invoiceCause[t.Cause]
	if !ok {
		return Transaction{}, fmt.Errorf("ledger: invoice %s: no invoice cause for %s", s.InvoiceID, t.Cause)
	}
	t.Cause, t.PurchaseID, t.InvoiceID = c, uuid.Nil, s.InvoiceID
	t.Key = t.key()
	return t, nil
}

// InvoicePaid posts a paid invoice: the amount arrives at Stripe and each
// party's share goes to its pending account (PurchaseCompleted).
func InvoicePaid(s InvoiceSale) (Transaction, error) {
	if err := s.validate(); err != nil {
		return Transaction{}, err
	}
	return s.retag(PurchaseCompleted(s.sale()))
}

// InvoiceRelease ends an invoice's hold (Release).
func InvoiceRelease(s InvoiceSale, b Book, at time.Time) (Transaction, error) {
	return s.retag(Release(s.sale(), b, at))
}

// InvoiceRefund posts a refund of the invoice's charge; refunded is the
// invoice's cumulative refunded amount (Refund).
func InvoiceRefund(s InvoiceSale, b Book, refunded int64, refundID string, at time.Time) (Transaction, error) {
	return s.retag(Refund(s.sale(), b, refunded, refundID, at))
}

// InvoiceDisputeOpened holds the disputed amount in disputed (DisputeOpened).
func InvoiceDisputeOpened(s InvoiceSale, b Book, amount int64, disputeID string, at time.Time) (Transaction, error) {
	return s.retag(DisputeOpened(s.sale(), b, amount, disputeID, at))
}

// InvoiceDisputeWon returns what the dispute held (DisputeWon).
func InvoiceDisputeWon(s InvoiceSale, b Book, disputeID string, at time.Time) (Transaction, error) {
	return s.retag(DisputeWon(s.sale(), b, disputeID, at))
}

// InvoiceDisputeLost gives the lost amount back like a refund (DisputeLost).
func InvoiceDisputeLost(s InvoiceSale, b Book, amount int64, disputeID string, at time.Time) (Transaction, error) {
	return s.retag(DisputeLost(s.sale(), b, amount, disputeID, at))
}

// Fold adds t, one of s's transactions (posted or about to be), to b, so a
// caller building several postings of one invoice in one call builds each
// on the book the previous ones leave.
func (s InvoiceSale) Fold(b *Book, t Transaction) error {
	if t.IsZero() {
		return nil
	}
	if t.InvoiceID != s.InvoiceID {
		return fmt.Errorf("ledger: %s is not a posting of invoice %s", t.Key, s.InvoiceID)
	}
	c, ok := purchaseCause[t.Cause]
	if !ok {
		return fmt.Errorf("ledger: %s is not an invoice's posting", t.Key)
	}
	t.Cause = c
	return b.apply(s.sale(), t)
}

// InvoiceState is what an invoice's row says its postings must hold after
// the sale: the cumulative refund and the dispute.
type InvoiceState struct {
	Refunded      int64  // refund_amount_cents
	RefundID      string // the newest refund, re_…
	Dispute       string // "" (none), model.DisputeOpen, DisputeWon, DisputeLost
	DisputeAmount int64  // dispute_amount_cents
	DisputeID     string
}

// InvoiceCatchUp returns the postings that bring the ledger from b to what
// st says, in the order the rules need (the sale, the refund's growth, the
// dispute's opening, its close), each built on the book the previous one
// leaves; at is the effective time of all but the sale (the event's time).
// Posting what the row says rather than what one event says makes the
// ledger follow the invoice in every delivery order, and a replay posts
// nothing.
func InvoiceCatchUp(s InvoiceSale, b Book, st InvoiceState, at time.Time) ([]Transaction, error) {
	var out []Transaction
	add := func(t Transaction, err error) error {
		if err != nil || t.IsZero() {
			return err
		}
		if err := s.Fold(&b, t); err != nil {
			return err
		}
		out = append(out, t)
		return nil
	}
	if !b.Posted {
		if err := add(InvoicePaid(s)); err != nil {
			return nil, err
		}
	}
	if err := add(InvoiceRefund(s, b, st.Refunded, st.RefundID, at)); err != nil {
		return nil, err
	}
	// Each dispute rule posts nothing when the book already has its step;
	// a close that overtook its opening posts the close alone.
	var t Transaction
	var err error
	switch st.Dispute {
	case model.DisputeOpen:
		t, err = InvoiceDisputeOpened(s, b, st.DisputeAmount, st.DisputeID, at)
	case model.DisputeWon:
		t, err = InvoiceDisputeWon(s, b, st.DisputeID, at)
	case model.DisputeLost:
		t, err = InvoiceDisputeLost(s, b, st.DisputeAmount, st.DisputeID, at)
	}
	if err := add(t, err); err != nil {
		return nil, err
	}
	return out, nil
}
