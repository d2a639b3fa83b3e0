package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/model"
)

// Checks of Verify, in the order it runs them.
const (
	CheckTransactionBalanced = "transaction_balanced" // a transaction's entries sum to zero per currency
	CheckEntrySequence       = "entry_sequence"       // an account's entries are versions 1…n, each balance_after the running sum
	CheckAccountBalance      = "account_balance"      // a stored balance and version equal its entries' sum and count
	CheckPurchase            = "purchase_postings"    // a purchase's postings equal its split minus what was given back
	CheckPayout              = "payout_postings"      // a payout's postings match its status
)

// Difference is the first thing Verify found wrong.
type Difference struct {
	Check   string // one of the Check constants
	Subject string // what is wrong: "transaction 12 (refund:…)", "account 3 creator:c1/usd/pending", "purchase …", "payout …"
	Detail  string // what was expected and what is stored
}

// Error describes the difference on one line, for the CLI and logs.
func (d *Difference) Error() string {
	return fmt.Sprintf("ledger verify: %s: %s: %s", d.Check, d.Subject, d.Detail)
}

// verifyPage is how many purchases or payouts Verify reads per statement.
const verifyPage = 1000

// Verify checks the ledger's invariants in one REPEATABLE READ snapshot and
// returns the first difference found, or nil when every check holds:
//
//   - every transaction sums to zero per currency;
//   - every account's entries are versions 1…n, each balance_after the
//     running sum, and its stored balance and version are their sum and n;
//   - every paid purchase is posted and its postings give each party its
//     share minus its part of min(amount, refunded + lost dispute), with
//     the refund and dispute state of its row, its money in pending before
//     the release and not after, and nothing in disputed unless a dispute
//     is open; an unpaid purchase has no postings;
//   - every payout's postings match its status;
//   - every subscription invoice is posted and its postings equal its split
//     minus what its refunds and a lost dispute gave back (the reversal its
//     row records), checked as a purchase's (verify_invoice.go).
//
// The error is for failures to read, not for differences.
func Verify(ctx context.Context, db *bun.DB) (*Difference, error) {
	var diff *Difference
	err := db.RunInTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}, func(ctx context.Context, tx bun.Tx) error {
		var err error
		for _, check := range []func(context.Context, bun.IDB) (*Difference, error){
			verifyBalanced, verifySequences, verifyAccounts, verifyPurchases, verifyPayouts, verifyInvoices,
		} {
			if diff, err = check(ctx, tx); err != nil || diff != nil {
				return err
			}
		}
		return nil
	})
	return diff, err
}

func verifyBalanced(ctx context.Context, db bun.IDB) (*Difference, error) {
	type row struct {
		TxID     int64  `bun:"transaction_id"`
		Key      string `bun:"idempotency_key"`
		Currency string `bun:"currency"`
		Total    int64  `bun:"total"`
	}
	return firstDifference(ctx, db, "transaction sums", `
SELECT e.transaction_id, t.idempotency_key, a.currency, sum(e.amount) AS total
FROM ledger_entries e
JOIN ledger_accounts a ON a.id = e.account_id
JOIN ledger_transactions t ON t.id = e.transaction_id
GROUP BY e.transaction_id, t.idempotency_key, a.currency
HAVING sum(e.amount) <> 0
ORDER BY e.transaction_id LIMIT 1`, func(r row) *Difference {
		return &Difference{Check: CheckTransactionBalanced, Subject: fmt.Sprintf("transaction %d (%s)", r.TxID, r.Key),
			Detail: fmt.Sprintf("entries sum to %d %s, want 0", r.Total, r.Currency)}
	})
}

func verifySequences(ctx context.Context, db bun.IDB) (*Difference, error) {
	type row struct {
		AccountID int64  `bun:"account_id"`
		Account   string `bun:"account"`
		Version   int64  `bun:"account_version"`
		After     int64  `bun:"balance_after"`
		Running   int64  `bun:"running"`
		N         int64  `bun:"n"`
	}
	return firstDifference(ctx, db, "entry sequences", `
SELECT x.account_id, a.owner || '/' || a.currency || '/' || a.kind AS account, x.account_version, x.balance_after, x.running, x.n
FROM (SELECT e.account_id, e.account_version, e.balance_after,
             sum(e.amount) OVER w AS running, row_number() OVER w AS n
      FROM ledger_entries e
      WINDOW w AS (PARTITION BY e.account_id ORDER BY e.account_version)) x
JOIN ledger_accounts a ON a.id = x.account_id
WHERE x.running <> x.balance_after OR x.n <> x.account_version
ORDER BY x.account_id, x.account_version LIMIT 1`, func(r row) *Difference {
		return &Difference{Check: CheckEntrySequence, Subject: fmt.Sprintf("account %d %s", r.AccountID, r.Account),
			Detail: fmt.Sprintf("entry #%d has account_version %d and balance_after %d; the running sum is %d",
				r.N, r.Version, r.After, r.Running)}
	})
}

func verifyAccounts(ctx context.Context, db bun.IDB) (*Difference, error) {
	type row struct {
		ID      int64  `bun:"id"`
		Account string `bun:"account"`
		Balance int64  `bun:"balance"`
		Version int64  `bun:"version"`
		Total   int64  `bun:"total"`
		N       int64  `bun:"n"`
	}
	return firstDifference(ctx, db, "account balances", `
SELECT a.id, a.owner || '/' || a.currency || '/' || a.kind AS account, a.balance, a.version,
       coalesce(s.total, 0) AS total, coalesce(s.n, 0) AS n
FROM ledger_accounts a
LEFT JOIN (SELECT account_id, sum(amount) AS total, count(*) AS n FROM ledger_entries GROUP BY account_id) s
       ON s.account_id = a.id
WHERE a.balance <> coalesce(s.total, 0) OR a.version <> coalesce(s.n, 0)
ORDER BY a.id LIMIT 1`, func(r row) *Difference {
		return &Difference{Check: CheckAccountBalance, Subject: fmt.Sprintf("account %d %s", r.ID, r.Account),
			Detail: fmt.Sprintf("stored balance %d version %d; its entries sum to %d over %d entries", r.Balance, r.Version, r.Total, r.N)}
	})
}

func verifyPurchases(ctx context.Context, db bun.IDB) (*Difference, error) {
	after := uuid.Nil
	for {
		var rows []saleRow
		err := db.NewRaw(`
SELECT `+saleColumns+`
FROM purchases p
WHERE p.id > ? ORDER BY p.id LIMIT ?`, after, verifyPage).Scan(ctx, &rows)
		if err != nil {
			return nil, wrapRead(err, "purchases")
		}
		if len(rows) == 0 {
			return nil, nil
		}
		ids := make([]uuid.UUID, len(rows))
		for i, r := range rows {
			ids[i] = r.ID
		}
		txs, err := loadPurchaseTransactions(ctx, db, ids)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if d := checkPurchase(r, txs[r.ID]); d != "" {
				return &Difference{Check: CheckPurchase, Subject: "purchase " + r.ID.String(), Detail: d}, nil
			}
		}
		after = rows[len(rows)-1].ID
	}
}

// checkPurchase returns what is wrong with a purchase's postings, or "".
func checkPurchase(r saleRow, txs []Transaction) string {
	paid := r.Status != model.PurchasePending && r.Status != model.PurchaseFailed
	if !paid {
		if len(txs) > 0 {
			return fmt.Sprintf("status %s, but it has %d postings (%s…)", r.Status, len(txs), txs[0].Key)
		}
		return ""
	}
	s := r.sale()
	if err := s.validate(); err != nil {
		return err.Error()
	}
	b := Book{PurchaseID: r.ID}
	sums := map[Account]int64{}
	for _, t := range txs {
		if err := b.apply(s, t); err != nil {
			return err.Error()
		}
		for _, e := range t.Entries {
			sums[e.Account] += e.Amount
		}
	}
	maps.DeleteFunc(sums, func(_ Account, v int64) bool { return v == 0 })
	if !b.Posted {
		return "status " + r.Status + ", but no sale posting"
	}
	if b.Refunded != r.RefundAmountCents {
		return fmt.Sprintf("refunds posted up to %d, refund_amount_cents is %d", b.Refunded, r.RefundAmountCents)
	}
	if b.Dispute != r.DisputeStatus {
		return fmt.Sprintf("dispute posted as %q, dispute_status is %q", b.Dispute, r.DisputeStatus)
	}
	reversed := min(s.Split.Amount, r.RefundAmountCents+b.Lost)
	given, err := split.Reversal(s.Split, reversed)
	if err != nil {
		return err.Error()
	}
	want := map[Account]int64{}
	if v := -(s.Split.Amount - reversed); v != 0 {
		want[s.clearing()] = v
	}
	kept := s.Split.Shares().Sub(given)
	for _, x := range parties {
		home := s.home(x, b.Released)
		held := sums[s.account(x, Disputed)]
		if b.Dispute != model.DisputeOpen && held != 0 {
			return fmt.Sprintf("%s holds %d with no open dispute", s.account(x, Disputed), held)
		}
		if v := x.part(kept) - held; v != 0 {
			want[home] = v
		}
		if held != 0 {
			want[s.account(x, Disputed)] = held
		}
	}
	if !maps.Equal(sums, want) {
		return fmt.Sprintf("postings %s, want %s (given back %d: refunded %d, lost %d; released %t)",
			formatSums(sums), formatSums(want), reversed, r.RefundAmountCents, b.Lost, b.Released)
	}
	return ""
}

func verifyPayouts(ctx context.Context, db bun.IDB) (*Difference, error) {
	after := uuid.Nil
	for {
		var ps []model.Payout
		if err := db.NewSelect().Model(&ps).Where("id > ?", after).Order("id").Limit(verifyPage).Scan(ctx); err != nil {
			return nil, wrapRead(err, "payouts")
		}
		if len(ps) == 0 {
			return nil, nil
		}
		ids := make([]uuid.UUID, len(ps))
		for i := range ps {
			ids[i] = ps[i].ID
		}
		var rows []txRow
		q := transactionsSelect + `WHERE t.payout_id = ANY(?::uuid[]) ORDER BY t.id, e.id`
		if err := db.NewRaw(q, pgdialect.Array(ids)).Scan(ctx, &rows); err != nil {
			return nil, wrapRead(err, "payout postings")
		}
		txs := map[uuid.UUID][]Transaction{}
		for _, t := range groupRows(rows) {
			txs[t.PayoutID] = append(txs[t.PayoutID], t)
		}
		for i := range ps {
			if d := checkPayout(&ps[i], txs[ps[i].ID]); d != "" {
				return &Difference{Check: CheckPayout, Subject: "payout " + ps[i].ID.String(), Detail: d}, nil
			}
		}
		after = ps[len(ps)-1].ID
	}
}

// checkPayout returns what is wrong with a payout's postings, or "".
func checkPayout(p *model.Payout, txs []Transaction) string {
	a, err := payoutAccounts(p)
	if err != nil {
		return err.Error()
	}
	sums := map[Account]int64{}
	for _, t := range txs {
		for _, e := range t.Entries {
			sums[e.Account] += e.Amount
		}
	}
	maps.DeleteFunc(sums, func(_ Account, v int64) bool { return v == 0 })
	want := map[Account]int64{}
	switch p.Status {
	case model.PayoutPending, model.PayoutInTransit:
		want[a(Available)], want[a(InTransit)] = -p.AmountCents, p.AmountCents
	case model.PayoutPaid:
		want[a(Available)], want[a(PaidOut)] = -p.AmountCents+p.AmountReversedCents, p.AmountCents-p.AmountReversedCents
	}
	maps.DeleteFunc(want, func(_ Account, v int64) bool { return v == 0 })
	if !maps.Equal(sums, want) {
		return fmt.Sprintf("status %s amount %d reversed %d: postings %s, want %s",
			p.Status, p.AmountCents, p.AmountReversedCents, formatSums(sums), formatSums(want))
	}
	return ""
}

// formatSums prints per-account sums in account order.
func formatSums(m map[Account]int64) string {
	keys := slices.SortedFunc(maps.Keys(m), compareAccounts)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// firstDifference runs query, which selects at most one T, and describes
// the row found as a Difference.
func firstDifference[T any](ctx context.Context, db bun.IDB, what, query string, describe func(T) *Difference) (*Difference, error) {
	var rows []T
	if err := db.NewRaw(query).Scan(ctx, &rows); err != nil {
		return nil, wrapRead(err, what)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return describe(rows[0]), nil
}

func wrapRead(err error, what string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("ledger verify: read %s: %w", what, err)
}
