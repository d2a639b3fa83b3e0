package ledger

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// LoadInvoiceBook reads the book of s's invoice: what its postings hold, as
// Book says for a purchase. Call it in the transaction that will post,
// holding the invoice's row lock (SELECT … FOR UPDATE), so no other posting
// of the invoice runs in between.
func LoadInvoiceBook(ctx context.Context, db bun.IDB, s InvoiceSale) (Book, error) {
	books, err := LoadInvoiceBooks(ctx, db, []InvoiceSale{s})
	if err != nil {
		return Book{}, err
	}
	return books[s.InvoiceID], nil
}

// LoadInvoiceBooks reads the books of many invoices in one statement, by
// invoice id.
func LoadInvoiceBooks(ctx context.Context, db bun.IDB, sales []InvoiceSale) (map[string]Book, error) {
	ids := make([]string, len(sales))
	for i, s := range sales {
		ids[i] = s.InvoiceID
	}
	txs, err := loadInvoiceTransactions(ctx, db, ids)
	if err != nil {
		return nil, err
	}
	books := make(map[string]Book, len(sales))
	for _, s := range sales {
		b := s.EmptyBook()
		for _, t := range txs[s.InvoiceID] {
			if err := s.Fold(&b, t); err != nil {
				return nil, err
			}
		}
		books[s.InvoiceID] = b
	}
	return books, nil
}

// EmptyBook is the book of s's invoice before any posting.
func (s InvoiceSale) EmptyBook() Book { return Book{PurchaseID: s.sale().PurchaseID} }

// loadInvoiceTransactions returns the stored transactions of each invoice,
// in posting order.
func loadInvoiceTransactions(ctx context.Context, db bun.IDB, ids []string) (map[string][]Transaction, error) {
	var rows []txRow
	q := transactionsSelect + `WHERE t.invoice_id = ANY(?::text[]) ORDER BY t.id, e.id`
	if err := db.NewRaw(q, pgdialect.Array(ids)).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("ledger: read postings of %d invoices: %w", len(ids), err)
	}
	out := make(map[string][]Transaction, len(ids))
	for _, t := range groupRows(rows) {
		out[t.InvoiceID] = append(out[t.InvoiceID], t)
	}
	return out, nil
}
