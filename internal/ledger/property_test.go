package ledger

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/model"
)

// event is one thing that happens to a purchase, as the processor would
// apply it.
type event struct {
	p      int    // index of the purchase
	kind   string // sale, refund, opened, won, lost, release
	amount int64  // refund: the charge's cumulative amount_refunded; opened/lost: the dispute amount
}

// lifecycle is a purchase's row as the processor keeps it
// (docs/lifecycle.md): the largest cumulative refund seen, and the dispute
// flag, which moves none → open → won|lost and never back. lost is the
// amount of the dispute that was lost.
type lifecycle struct {
	refunded int64
	dispute  string
	lost     int64
}

// apply changes the row for e and reports nothing else.
func (l *lifecycle) apply(e event, amount int64) {
	switch e.kind {
	case "refund":
		l.refunded = max(l.refunded, min(e.amount, amount))
	case "opened":
		if l.dispute == "" {
			l.dispute = model.DisputeOpen
		}
	case "won", "lost":
		if l.dispute == "" || l.dispute == model.DisputeOpen {
			l.dispute = e.kind
			if e.kind == "lost" {
				l.lost = e.amount
			}
		}
	}
}

func (l lifecycle) status(amount int64) string {
	switch {
	case l.dispute == model.DisputeLost:
		return model.PurchaseDisputeLost
	case l.refunded >= amount && amount > 0:
		return model.PurchaseRefunded
	case l.refunded > 0:
		return model.PurchasePartiallyRefunded
	}
	return model.PurchaseCompleted
}

// eventsOf draws a purchase's events: its sale first, then in a random
// order partial and full refunds (as cumulative totals, so some arrive
// after a larger one), a dispute opened and closed (the close sometimes
// without its opening, or before it), and a release.
func eventsOf(rng *rand.Rand, p int, amount int64) []event {
	var evs []event
	if amount > 0 {
		for range rng.IntN(4) {
			cum := 1 + rng.Int64N(amount)
			if rng.IntN(4) == 0 {
				cum = amount + rng.Int64N(3) // a full refund, sometimes of a larger charge
			}
			evs = append(evs, event{p: p, kind: "refund", amount: cum})
		}
	}
	if rng.IntN(3) == 0 {
		d := amount
		if rng.IntN(2) == 0 && amount > 0 {
			d = 1 + rng.Int64N(amount)
		}
		if rng.IntN(5) > 0 {
			evs = append(evs, event{p: p, kind: "opened", amount: d})
		}
		switch rng.IntN(3) {
		case 0:
			evs = append(evs, event{p: p, kind: "won"})
		case 1:
			evs = append(evs, event{p: p, kind: "lost", amount: d})
		}
	}
	if rng.IntN(10) < 7 {
		evs = append(evs, event{p: p, kind: "release"})
	}
	rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	return append([]event{{p: p, kind: "sale"}}, evs...)
}

// rule returns the posting of e.
func rule(s Sale, b Book, l lifecycle, e event, at time.Time) (Transaction, error) {
	switch e.kind {
	case "sale":
		return PurchaseCompleted(s)
	case "refund":
		return Refund(s, b, l.refunded, "re_x", at)
	case "opened":
		return DisputeOpened(s, b, e.amount, "du_x", at)
	case "won":
		return DisputeWon(s, b, "du_x", at)
	case "lost":
		return DisputeLost(s, b, e.amount, "du_x", at)
	case "release":
		return Release(s, b, at)
	}
	return Transaction{}, fmt.Errorf("unknown event %q", e.kind)
}

// The property: thousands of random purchases with random splits,
// partial and full refunds, disputes opened, won and lost, and releases, in
// random order, applied by concurrent workers the way the processor applies
// events (purchase row locked, book read, rules, one PostMany, row updated,
// in one transaction) while hold releases run beside them. Afterwards every
// invariant of Verify holds, and each party's total equals the sum of its
// split shares minus its part of what was refunded or lost, to the cent.
func TestLedgerProperty(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 4, 7)
	rng := rand.New(rand.NewPCG(20261207, 19))
	n := 2000
	if testing.Short() {
		n = 300
	}
	ps := w.addPurchases(t, rng, n*4/5, "usd")
	ps = append(ps, w.addPurchases(t, rng, n/5, "eur")...)

	const workers = 4
	queues := make([][]event, workers) // a purchase's events stay in one queue, in order
	for i, p := range ps {
		q := i % workers
		for _, e := range eventsOf(rng, i, p.sale.Split.Amount) {
			// Interleave with the queue's other purchases at random.
			at := len(queues[q])
			if at > 0 {
				at = max(rng.IntN(at+1), lastOf(queues[q], i)+1)
			}
			queues[q] = slices.Insert(queues[q], at, e)
		}
	}
	rows := make([]lifecycle, len(ps)) // each row is written by its queue's worker only
	var wg sync.WaitGroup
	errs := make(chan error, workers+1)
	stop := make(chan struct{})
	for q := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(q), 6))
			for evs := queues[q]; len(evs) > 0; {
				k := min(len(evs), 1+r.IntN(40))
				if err := applyChunk(ctx, w.db, ps, rows, evs[:k]); err != nil {
					errs <- fmt.Errorf("worker %d: %w", q, err)
					return
				}
				evs = evs[k:]
			}
		}()
	}
	// Releases of whatever is due, and payouts of whatever is available,
	// concurrently with the workers.
	var releaser sync.WaitGroup
	releaser.Add(2)
	go func() {
		defer releaser.Done()
		if err := payoutRuns(ctx, w, stop); err != nil {
			errs <- fmt.Errorf("payouts: %w", err)
		}
	}()
	go func() {
		defer releaser.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := ReleaseDue(ctx, w.db, Config{Hold: 10 * time.Minute}, t0.Add(time.Duration(len(ps))*time.Second), 50); err != nil {
				errs <- fmt.Errorf("release: %w", err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	wg.Wait()
	close(stop)
	releaser.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	mustVerify(t, w.db)
	var counts []struct {
		Status string `bun:"status"`
		N      int    `bun:"n"`
	}
	if err := w.db.NewRaw(`SELECT status, count(*) AS n FROM payouts GROUP BY status ORDER BY status`).Scan(ctx, &counts); err != nil {
		t.Fatal(err)
	}
	var reversals, releases, negative int
	if err := w.db.NewRaw(`SELECT count(*) FILTER (WHERE cause = 'transfer_reversed'), count(*) FILTER (WHERE cause = 'release')
		FROM ledger_transactions`).Scan(ctx, &reversals, &releases); err != nil {
		t.Fatal(err)
	}
	if err := w.db.NewRaw(`SELECT count(*) FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
		WHERE a.kind = 'available' AND e.balance_after < 0`).Scan(ctx, &negative); err != nil {
		t.Fatal(err)
	}
	t.Logf("payouts by status %v, %d transfer reversals, %d releases, %d entries left an available balance negative",
		counts, reversals, releases, negative)

	// Each party's total over all its accounts (what it has in pending,
	// available or revenue and disputed, plus what payouts took to
	// in_transit and paid_out), and what arrived at Stripe, against the
	// shares.
	want := map[Account]int64{}
	add := func(owner, cur string, v int64) { want[Account{Owner: owner, Currency: cur}] += v }
	for i, p := range ps {
		s, l := p.sale, rows[i]
		given, err := split.Reversal(s.Split, min(s.Split.Amount, l.refunded+l.lost))
		if err != nil {
			t.Fatal(err)
		}
		kept := s.Split.Shares().Sub(given)
		for _, x := range parties {
			add(s.owner(x), s.Currency, x.part(kept))
		}
		add("clearing", s.Currency, -kept.Sum())
	}
	got := map[Account]int64{}
	for a, v := range balances(t, w.db) {
		owner := a.Owner
		if a.Kind == StripeClearing {
			owner = "clearing"
		}
		got[Account{Owner: owner, Currency: a.Currency}] += v
	}
	maps.DeleteFunc(got, func(_ Account, v int64) bool { return v == 0 })
	maps.DeleteFunc(want, func(_ Account, v int64) bool { return v == 0 })
	if !maps.Equal(got, want) {
		t.Fatalf("party totals\n got %s\nwant %s", formatSums(got), formatSums(want))
	}

	// Everything still pending after its hold is released by one more run,
	// and then only open disputes hold anything outside available.
	for {
		k, err := ReleaseDue(ctx, w.db, Config{Hold: 0}, t0.Add(365*24*time.Hour), 500)
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			break
		}
	}
	mustVerify(t, w.db)
	for a, v := range balances(t, w.db) {
		if a.Kind == Pending && v != 0 {
			t.Errorf("%s = %d after every release", a, v)
		}
	}
}

// lastOf returns the index of purchase p's last event in q, or -1.
func lastOf(q []event, p int) int {
	for i := len(q) - 1; i >= 0; i-- {
		if q[i].p == p {
			return i
		}
	}
	return -1
}

// applyChunk applies evs in one database transaction, as the processor's
// batch would: the purchases' rows locked in id order, their books read,
// each event's rule applied on the book as it stands after the previous
// ones, one PostMany, and the rows updated.
func applyChunk(ctx context.Context, bdb *bun.DB, ps []purchase, rows []lifecycle, evs []event) error {
	return bdb.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var ids []uuid.UUID
		seen := map[int]bool{}
		for _, e := range evs {
			if !seen[e.p] {
				seen[e.p] = true
				ids = append(ids, ps[e.p].row.ID)
			}
		}
		slices.SortFunc(ids, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
		var locked []uuid.UUID
		if err := tx.NewRaw(`SELECT id FROM purchases WHERE id = ANY(?::uuid[]) ORDER BY id FOR UPDATE`, pgArray(ids)).Scan(ctx, &locked); err != nil {
			return err
		}
		var sales []Sale
		for p := range seen {
			sales = append(sales, ps[p].sale)
		}
		books, err := LoadBooks(ctx, tx, sales)
		if err != nil {
			return err
		}
		next := make(map[int]lifecycle, len(seen)) // rows[p] of seen purchases: this worker's own
		for p := range seen {
			next[p] = rows[p]
		}
		var ts []Transaction
		for _, e := range evs {
			s := ps[e.p].sale
			b := books[s.PurchaseID]
			l := next[e.p]
			l.apply(e, s.Split.Amount)
			next[e.p] = l
			t, err := rule(s, b, l, e, s.PurchasedAt.Add(time.Minute))
			if err != nil {
				return fmt.Errorf("%s of %s: %w", e.kind, s.PurchaseID, err)
			}
			if t.IsZero() {
				continue
			}
			if err := b.apply(s, t); err != nil {
				return err
			}
			books[s.PurchaseID] = b
			ts = append(ts, t)
		}
		out, err := PostMany(ctx, tx, ts)
		if err != nil {
			return err
		}
		for i, o := range out {
			if o != Posted {
				return fmt.Errorf("%s: %s, want posted (the books say it is new)", ts[i].Key, o)
			}
		}
		for p := range seen {
			l, r := next[p], ps[p].row
			var refundedAt *time.Time
			if l.refunded >= r.AmountPaidCents && r.AmountPaidCents > 0 {
				refundedAt = r.PurchasedAt
			}
			var dispute *string
			if l.dispute != "" {
				dispute = &l.dispute
			}
			_, err := tx.NewUpdate().Table("purchases").Where("id = ?", r.ID).
				Set("refund_amount_cents = ?", l.refunded).Set("status = ?", l.status(r.AmountPaidCents)).
				Set("dispute_status = ?", dispute).Set("refunded_at = ?", refundedAt).Exec(ctx)
			if err != nil {
				return err
			}
		}
		// The transaction may still fail; rows change only when it commits.
		return commitRows(tx, rows, next, seen)
	})
}

// commitRows copies the chunk's rows into rows once the transaction will
// commit: RunInTx commits right after f returns nil.
func commitRows(_ bun.Tx, rows []lifecycle, next map[int]lifecycle, seen map[int]bool) error {
	for p := range seen {
		rows[p] = next[p]
	}
	return nil
}

// payoutRuns pays payees out of their available balances until stop, the
// way a payout run would: a payouts row and its posting in one
// transaction (refused when a refund took the balance meanwhile), then the
// transfer settled, paid or failed, and now and then a paid transfer
// partly reversed.
func payoutRuns(ctx context.Context, w *world, stop <-chan struct{}) error {
	if _, err := w.db.ExecContext(ctx, `INSERT INTO payees (kind, id) SELECT 'creator', unnest(?::text[])`, pgArray(w.creators)); err != nil {
		return err
	}
	orgs := make([]string, len(w.orgs))
	for i, o := range w.orgs {
		orgs[i] = o.String()
	}
	if _, err := w.db.ExecContext(ctx, `INSERT INTO payees (kind, id) SELECT 'organization', unnest(?::text[])`, pgArray(orgs)); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var open, paid []*model.Payout
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		var accs []model.LedgerAccount
		if err := w.db.NewSelect().Model(&accs).Where("kind = 'available' AND owner <> 'platform' AND balance > 0").Scan(ctx); err != nil {
			return err
		}
		if len(accs) > 0 {
			a := accs[rng.IntN(len(accs))]
			kind, id, _ := strings.Cut(a.Owner, ":")
			id7, err := uuid.NewV7()
			if err != nil {
				return err
			}
			p := &model.Payout{ID: id7, PayeeKind: kind, PayeeID: id, Currency: a.Currency, AmountCents: 1 + rng.Int64N(a.Balance),
				Status: model.PayoutPending, TransferGroup: "payout:" + id7.String(), CreatedAt: t0}
			err = w.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				if _, err := tx.NewInsert().Model(p).Exec(ctx); err != nil {
					return err
				}
				_, err := Post(ctx, tx, must(PayoutCreated(p)))
				return err
			})
			switch {
			case err == nil:
				open = append(open, p)
			case db.SQLState(err) == "23505":
				// The payee has an open payout in this currency: a run
				// makes one at a time (payouts_one_open_per_payee_currency).
			case !errors.Is(err, ErrOverdraft):
				return err
			}
		}
		if len(open) > 0 && rng.IntN(2) == 0 {
			i := rng.IntN(len(open))
			p := open[i]
			open = slices.Delete(open, i, i+1)
			var t Transaction
			if rng.IntN(4) == 0 {
				p.Status, p.FailedAt = model.PayoutFailed, &t0
				t = must(PayoutFailed(p, t0))
			} else {
				tr := "tr_" + p.ID.String()
				p.Status, p.StripeTransferID, p.PaidAt = model.PayoutPaid, &tr, &t0
				t = must(PayoutPaid(p, tr, t0))
				paid = append(paid, p)
			}
			if err := updatePayout(ctx, w.db, p, t); err != nil {
				return err
			}
		}
		if len(paid) > 0 && rng.IntN(8) == 0 {
			p := paid[rng.IntN(len(paid))]
			if p.AmountReversedCents < p.AmountCents {
				reversed := p.AmountReversedCents + 1 + rng.Int64N(p.AmountCents-p.AmountReversedCents)
				t := must(TransferReversed(p, reversed, "trr_x", t0))
				p.AmountReversedCents = reversed
				if err := updatePayout(ctx, w.db, p, t); err != nil {
					return err
				}
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// updatePayout writes p's row and t in one transaction.
func updatePayout(ctx context.Context, bdb *bun.DB, p *model.Payout, t Transaction) error {
	return bdb.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewUpdate().Model(p).WherePK().Exec(ctx); err != nil {
			return err
		}
		_, err := Post(ctx, tx, t)
		return err
	})
}
