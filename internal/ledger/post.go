package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// Outcome is what posting one transaction did.
type Outcome int

// Outcomes of Post and PostMany.
const (
	Skipped       Outcome = iota // the zero Transaction: the rule had nothing to post
	Posted                       // written now
	AlreadyPosted                // its key was posted before with the same content: nothing written
)

// String returns the outcome's name, as a log value.
func (o Outcome) String() string {
	switch o {
	case Posted:
		return "posted"
	case AlreadyPosted:
		return "already_posted"
	}
	return "skipped"
}

// ErrKeyConflict is a transaction whose idempotency key was posted before
// with different content: a bug in a rule or its inputs, never retried.
var ErrKeyConflict = errors.New("ledger: idempotency key posted with different content")

// Post writes one transaction in db, which should be the transaction of the
// event that causes it. See PostMany.
func Post(ctx context.Context, db bun.IDB, t Transaction) (Outcome, error) {
	out, err := PostMany(ctx, db, []Transaction{t})
	if err != nil {
		return 0, err
	}
	return out[0], nil
}

// PostMany writes many transactions with a fixed number of statements
// whatever their number, and returns each one's Outcome in input order:
//
//	INSERT ledger_transactions … ON CONFLICT DO NOTHING RETURNING   1
//	SELECT the ones already posted, to compare                     0 or 1
//	INSERT ledger_accounts … ON CONFLICT DO UPDATE, then
//	INSERT ledger_entries (one statement)                          0 or 1
//
// The last statement creates missing accounts and adds each account's
// total to its balance and version, taking the row locks in the global
// account order (compareAccounts), and inserts the entries with the
// balance_after and account_version that follow from the balances it
// updated, so a caller that posts last holds the accounts' locks for this
// one statement and its commit. Transaction keys are inserted sorted too,
// so two callers posting the same keys wait for each other in the same
// order.
//
// Deadlock freedom needs every ledger lock of a database transaction to be
// taken by one call: post all of an event's (or a batch's) transactions with
// one PostMany, after the domain rows it locks (purchases, payouts) and
// before nothing else that other posters lock. Two calls in one database
// transaction would take two sorted runs of locks, which is not one order.
//
// A transaction whose key was posted before is compared with the stored
// one: the same content (cause, subject, amount, entries) is AlreadyPosted;
// different content fails the whole call with ErrKeyConflict.
//
// Given a *bun.DB rather than a transaction, PostMany runs in a
// transaction of its own, so its statements commit together.
func PostMany(ctx context.Context, db bun.IDB, ts []Transaction) ([]Outcome, error) {
	if pool, ok := db.(*bun.DB); ok {
		var out []Outcome
		err := pool.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var err error
			out, err = PostMany(ctx, tx, ts)
			return err
		})
		return out, err
	}
	out := make([]Outcome, len(ts))
	byKey := map[string]int{} // key → index of its first transaction
	var todo []int            // first occurrences, sorted by key below
	for i, t := range ts {
		if t.IsZero() {
			continue
		}
		if err := t.Validate(); err != nil {
			return nil, err
		}
		if j, dup := byKey[t.Key]; dup {
			if !t.sameContent(ts[j]) {
				return nil, fmt.Errorf("%w: %s twice in one call", ErrKeyConflict, t.Key)
			}
			out[i] = AlreadyPosted
			continue
		}
		byKey[t.Key] = i
		todo = append(todo, i)
	}
	if len(todo) == 0 {
		return out, nil
	}
	slices.SortFunc(todo, func(a, b int) int { return strings.Compare(ts[a].Key, ts[b].Key) })

	ids, err := insertTransactions(ctx, db, ts, todo)
	if err != nil {
		return nil, err
	}
	var fresh, old []int
	for _, i := range todo {
		if _, ok := ids[ts[i].Key]; ok {
			fresh = append(fresh, i)
			out[i] = Posted
		} else {
			old = append(old, i)
			out[i] = AlreadyPosted
		}
	}
	if err := compareStored(ctx, db, ts, old); err != nil {
		return nil, err
	}
	// Entries follow the input order: a caller posting a purchase's sale
	// and its refund in one call sees versions and balances in that order.
	slices.Sort(fresh)
	if err := writeEntries(ctx, db, ts, fresh, ids); err != nil {
		return nil, err
	}
	return out, nil
}

// insertTransactions inserts the transactions ts[todo] (sorted by key) and
// returns the ids of those it inserted, by key.
func insertTransactions(ctx context.Context, db bun.IDB, ts []Transaction, todo []int) (map[string]int64, error) {
	n := len(todo)
	keys, causes, purchases, payouts, refs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	invoices := make([]string, n)
	amounts, ats := make([]int64, n), make([]time.Time, n)
	for j, i := range todo {
		t := ts[i]
		keys[j], causes[j], amounts[j], refs[j], ats[j] = t.Key, string(t.Cause), t.Amount, t.Reference, t.EffectiveAt
		if t.PurchaseID != uuid.Nil {
			purchases[j] = t.PurchaseID.String()
		}
		if t.PayoutID != uuid.Nil {
			payouts[j] = t.PayoutID.String()
		}
		invoices[j] = t.InvoiceID
	}
	var rows []struct {
		ID  int64  `bun:"id"`
		Key string `bun:"idempotency_key"`
	}
	err := db.NewRaw(`
INSERT INTO ledger_transactions (idempotency_key, cause, purchase_id, payout_id, invoice_id, amount_cents, reference, effective_at)
SELECT k, c, nullif(pu, '')::uuid, nullif(po, '')::uuid, nullif(inv, ''), am, nullif(ref, ''), eff
FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::text[], ?::timestamptz[])
     WITH ORDINALITY AS v(k, c, pu, po, inv, am, ref, eff, ord)
ORDER BY ord
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id, idempotency_key`,
		pgdialect.Array(keys), pgdialect.Array(causes), pgdialect.Array(purchases), pgdialect.Array(payouts),
		pgdialect.Array(invoices), pgdialect.Array(amounts), pgdialect.Array(refs), pgdialect.Array(ats)).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("ledger: insert %d transactions: %w", n, err)
	}
	ids := make(map[string]int64, len(rows))
	for _, r := range rows {
		ids[r.Key] = r.ID
	}
	return ids, nil
}

// compareStored checks that each of ts[old] matches what its key holds.
func compareStored(ctx context.Context, db bun.IDB, ts []Transaction, old []int) error {
	if len(old) == 0 {
		return nil
	}
	keys := make([]string, len(old))
	for j, i := range old {
		keys[j] = ts[i].Key
	}
	var rows []txRow
	q := transactionsSelect + `WHERE t.idempotency_key = ANY(?::text[]) ORDER BY t.id, e.id`
	if err := db.NewRaw(q, pgdialect.Array(keys)).Scan(ctx, &rows); err != nil {
		return fmt.Errorf("ledger: read %d posted transactions: %w", len(keys), err)
	}
	stored := map[string]Transaction{}
	for _, t := range groupRows(rows) {
		stored[t.Key] = t
	}
	for _, i := range old {
		s, ok := stored[ts[i].Key]
		if !ok {
			// Not inserted and not visible: a concurrent poster of the key
			// has not committed (possible only outside READ COMMITTED).
			return fmt.Errorf("ledger: %s: neither inserted nor visible", ts[i].Key)
		}
		if !ts[i].sameContent(s) {
			return fmt.Errorf("%w: %s", ErrKeyConflict, ts[i].Key)
		}
	}
	return nil
}

// writeEntries updates the accounts of ts[fresh] and inserts their entries
// in one statement (accountsEntriesQuery): the accounts' rows are the
// hottest locks of the database (every sale of a currency updates the
// platform's), held from this statement to the commit, so nothing else
// runs between taking them and committing. The NoOverdraft check uses the
// balances the statement returns; an ErrOverdraft fails the call (the
// caller rolls back, as for every PostMany error).
func writeEntries(ctx context.Context, db bun.IDB, ts []Transaction, fresh []int, ids map[string]int64) error {
	type total struct{ delta, n int64 }
	totals := map[Account]total{}
	for _, i := range fresh {
		for _, e := range ts[i].Entries {
			t := totals[e.Account]
			totals[e.Account] = total{t.delta + e.Amount, t.n + 1}
		}
	}
	if len(totals) == 0 {
		return nil
	}
	accounts := make([]Account, 0, len(totals))
	for a := range totals {
		accounts = append(accounts, a)
	}
	slices.SortFunc(accounts, compareAccounts)
	n := len(accounts)
	ord := make(map[Account]int64, n) // an account's 1-based position in the statement's accounts
	owners, currencies, kinds := make([]string, n), make([]string, n), make([]string, n)
	deltas, counts := make([]int64, n), make([]int64, n)
	for j, a := range accounts {
		ord[a] = int64(j + 1)
		owners[j], currencies[j], kinds[j] = a.Owner, a.Currency, string(a.Kind)
		deltas[j], counts[j] = totals[a].delta, totals[a].n
	}
	var txIDs, accOrds, amounts []int64
	for _, i := range fresh {
		for _, e := range ts[i].Entries {
			txIDs = append(txIDs, ids[ts[i].Key])
			accOrds = append(accOrds, ord[e.Account])
			amounts = append(amounts, e.Amount)
		}
	}
	var rows []struct {
		ID       int64  `bun:"id"`
		Owner    string `bun:"owner"`
		Currency string `bun:"currency"`
		Kind     string `bun:"kind"`
		Balance  int64  `bun:"balance"`
		Version  int64  `bun:"version"`
		Entries  int    `bun:"entries"`
	}
	err := db.NewRaw(accountsEntriesQuery,
		pgdialect.Array(owners), pgdialect.Array(currencies), pgdialect.Array(kinds),
		pgdialect.Array(deltas), pgdialect.Array(counts),
		pgdialect.Array(txIDs), pgdialect.Array(accOrds), pgdialect.Array(amounts)).Scan(ctx, &rows)
	if err != nil {
		return fmt.Errorf("ledger: update %d accounts and insert %d entries: %w", n, len(txIDs), err)
	}
	if len(rows) != n || rows[0].Entries != len(txIDs) {
		return fmt.Errorf("ledger: update %d accounts and insert %d entries: %d accounts returned", n, len(txIDs), len(rows))
	}
	// The balance each account had before this call, then after each
	// transaction in input order, as the statement wrote its entries.
	cur := make(map[Account]int64, n)
	for _, r := range rows {
		a := Account{Owner: r.Owner, Currency: r.Currency, Kind: Kind(r.Kind)}
		cur[a] = r.Balance - totals[a].delta
	}
	for _, i := range fresh {
		for _, e := range ts[i].Entries {
			cur[e.Account] += e.Amount
		}
		for _, a := range ts[i].NoOverdraft {
			if b, ok := cur[a]; ok && b < 0 {
				return fmt.Errorf("%w: %s would leave %s at %d", ErrOverdraft, ts[i].Key, a, b)
			}
		}
	}
	return nil
}

// accountsEntriesQuery creates missing accounts and adds each account's
// total and entry count to its balance and version, taking the row locks in
// the order of its arguments (compareAccounts), then inserts the entries in
// input order, each with its account's running balance_after and
// account_version from the balance and version the account had before.
// Arguments: owners, currencies, kinds, deltas, counts (one per account);
// transaction ids, account positions (1-based, in the accounts' arrays),
// amounts (one per entry, in input order). It returns every account's row
// after the update, with the number of entries inserted.
const accountsEntriesQuery = `WITH v AS (
	SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::bigint[], ?::bigint[]) WITH ORDINALITY AS v(o, c, k, d, n, ord)),
a AS (
	INSERT INTO ledger_accounts AS a (owner, currency, kind, balance, version)
	SELECT o, c, k, d, n FROM v ORDER BY ord
	ON CONFLICT (owner, currency, kind) DO UPDATE
	SET balance = a.balance + EXCLUDED.balance, version = a.version + EXCLUDED.version, updated_at = now()
	RETURNING a.id, a.owner, a.currency, a.kind, a.balance, a.version),
before AS (
	SELECT v.ord, a.id, a.balance - v.d AS balance, a.version - v.n AS version
	FROM v JOIN a ON a.owner = v.o AND a.currency = v.c AND a.kind = v.k),
e AS (
	INSERT INTO ledger_entries (transaction_id, account_id, amount, balance_after, account_version)
	SELECT x.t, b.id, x.am, b.balance + sum(x.am) OVER w, b.version + row_number() OVER w
	FROM unnest(?::bigint[], ?::bigint[], ?::bigint[]) WITH ORDINALITY AS x(t, ai, am, ord)
	JOIN before AS b ON b.ord = x.ai
	WINDOW w AS (PARTITION BY x.ai ORDER BY x.ord)
	ORDER BY x.ord
	RETURNING 1)
SELECT a.id, a.owner, a.currency, a.kind, a.balance, a.version, (SELECT count(*) FROM e) AS entries FROM a`
