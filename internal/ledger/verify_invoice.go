package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/split"
)

// CheckInvoice is Verify's check of subscription invoices: an invoice's
// postings equal its split minus what its refunds and a lost dispute gave
// back, and that reversal is the one its row records.
const CheckInvoice = "invoice_postings"

// invoiceRow is a subscription invoice as the verification reads it.
type invoiceRow struct {
	ID                           string     `bun:"id"`
	Status                       string     `bun:"status"`
	Currency                     string     `bun:"currency"`
	AmountPaidCents              int64      `bun:"amount_paid_cents"`
	PlatformFeeCents             int64      `bun:"platform_fee_cents"`
	OrganizationFeeCents         int64      `bun:"organization_fee_cents"`
	CreatorPayoutCents           int64      `bun:"creator_payout_cents"`
	RefundAmountCents            int64      `bun:"refund_amount_cents"`
	DisputeStatus                string     `bun:"dispute_status,nullzero"`
	ReversedPlatformFeeCents     int64      `bun:"reversed_platform_fee_cents"`
	ReversedOrganizationFeeCents int64      `bun:"reversed_organization_fee_cents"`
	ReversedCreatorPayoutCents   int64      `bun:"reversed_creator_payout_cents"`
	OrganizationID               uuid.UUID  `bun:"organization_id"`
	CreatorID                    string     `bun:"creator_id,nullzero"`
	PaidAt                       *time.Time `bun:"paid_at"`
}

func (r invoiceRow) sale() InvoiceSale {
	s := InvoiceSale{InvoiceID: r.ID, Currency: r.Currency, OrganizationID: r.OrganizationID, CreatorID: r.CreatorID,
		Split: split.Split{Amount: r.AmountPaidCents, Platform: r.PlatformFeeCents,
			Organization: r.OrganizationFeeCents, Creator: r.CreatorPayoutCents}}
	if r.PaidAt != nil {
		s.PaidAt = *r.PaidAt
	}
	return s
}

// verifyInvoices checks every subscription invoice's postings, a page at a
// time.
func verifyInvoices(ctx context.Context, db bun.IDB) (*Difference, error) {
	after := ""
	for {
		var rows []invoiceRow
		err := db.NewRaw(`
SELECT id, status, currency, amount_paid_cents, platform_fee_cents, organization_fee_cents, creator_payout_cents,
       refund_amount_cents, dispute_status, reversed_platform_fee_cents, reversed_organization_fee_cents,
       reversed_creator_payout_cents, organization_id, creator_id, paid_at
FROM subscription_invoices WHERE id > ? ORDER BY id LIMIT ?`, after, verifyPage).Scan(ctx, &rows)
		if err != nil {
			return nil, wrapRead(err, "subscription invoices")
		}
		if len(rows) == 0 {
			return nil, nil
		}
		ids := make([]string, len(rows))
		for i, r := range rows {
			ids[i] = r.ID
		}
		txs, err := loadInvoiceTransactions(ctx, db, ids)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if d := checkInvoice(r, txs[r.ID]); d != "" {
				return &Difference{Check: CheckInvoice, Subject: "invoice " + r.ID, Detail: d}, nil
			}
		}
		after = rows[len(rows)-1].ID
	}
}

// checkInvoice returns what is wrong with an invoice's postings, or "". A
// recorded invoice is paid (refunds and disputes change its status, never
// unpay it), so it must be posted. The postings are checked by the purchase
// check, on the invoice's sale, as the rules that wrote them are.
func checkInvoice(r invoiceRow, txs []Transaction) string {
	s := r.sale()
	if err := s.validate(); err != nil {
		return err.Error()
	}
	sale := s.sale()
	mapped := make([]Transaction, len(txs))
	lost := int64(0)
	for i, t := range txs {
		c, ok := purchaseCause[t.Cause]
		if !ok {
			return fmt.Sprintf("%s is not an invoice's posting", t.Key)
		}
		if c == CauseDisputeLost {
			lost += t.Amount
		}
		t.Cause, t.PurchaseID, t.InvoiceID = c, sale.PurchaseID, ""
		mapped[i] = t
	}
	sr := saleRow{ID: sale.PurchaseID, Status: r.Status, Currency: r.Currency, AmountPaidCents: r.AmountPaidCents,
		PlatformFeeCents: r.PlatformFeeCents, OrganizationFeeCents: r.OrganizationFeeCents,
		CreatorPayoutCents: r.CreatorPayoutCents, RefundAmountCents: r.RefundAmountCents, DisputeStatus: r.DisputeStatus,
		OrganizationID: r.OrganizationID, PurchasedAt: r.PaidAt, CreatorID: sale.CreatorID}
	if d := checkPurchase(sr, mapped); d != "" {
		return d
	}
	given, err := split.Reversal(s.Split, min(s.Split.Amount, r.RefundAmountCents+lost))
	if err != nil {
		return err.Error()
	}
	stored := split.Parts{Platform: r.ReversedPlatformFeeCents, Organization: r.ReversedOrganizationFeeCents,
		Creator: r.ReversedCreatorPayoutCents}
	if given != stored {
		return fmt.Sprintf("the ledger gave back %+v, the invoice records reversed %+v", given, stored)
	}
	return ""
}
