package ledger

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/model"
)

func TestPostIsIdempotent(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 2, 2)
	ps := w.addPurchases(t, rand.New(rand.NewPCG(3, 3)), 3, "usd")
	sale := must(PurchaseCompleted(ps[1].sale))

	if out := postTx(t, w.db, sale); out[0] != Posted {
		t.Fatalf("first post: %v", out[0])
	}
	before := balances(t, w.db)

	// Again, also under another effective time and reference (a second
	// Stripe event reporting the same change): nothing is written.
	again := sale
	again.EffectiveAt = sale.EffectiveAt.Add(time.Minute)
	again.Reference = "evt_other"
	if out := postTx(t, w.db, again); out[0] != AlreadyPosted {
		t.Fatalf("second post: %v", out[0])
	}
	if got := balances(t, w.db); !maps.Equal(got, before) {
		t.Fatalf("a re-post changed balances: %v → %v", before, got)
	}

	// The same key with other entries is a bug, refused.
	other := sale
	other.Entries = append([]Entry(nil), sale.Entries...)
	other.Entries[0].Amount--
	other.Entries[1].Amount++
	err := w.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { _, err := Post(ctx, tx, other); return err })
	if !errors.Is(err, ErrKeyConflict) {
		t.Fatalf("post of the key with other entries = %v, want ErrKeyConflict", err)
	}

	// In one call: the zero transaction is skipped, a copy of a key follows
	// its first occurrence, a copy with other content is refused.
	s2 := must(PurchaseCompleted(ps[2].sale))
	out := postTx(t, w.db, Transaction{}, s2, sale, s2)
	if want := []Outcome{Skipped, Posted, AlreadyPosted, AlreadyPosted}; fmt.Sprint(out) != fmt.Sprint(want) {
		t.Fatalf("outcomes %v, want %v", out, want)
	}
	s0 := must(PurchaseCompleted(ps[0].sale))
	s0b := s0
	s0b.Amount++
	err = w.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := PostMany(ctx, tx, []Transaction{s0, s0b})
		return err
	})
	if !errors.Is(err, ErrKeyConflict) {
		t.Fatalf("one key twice with different content = %v, want ErrKeyConflict", err)
	}
	// An invalid transaction fails before any statement.
	bad := s0
	bad.Entries = append([]Entry(nil), s0.Entries...)
	bad.Entries[0].Amount++
	if _, err := Post(ctx, w.db, bad); !errors.Is(err, ErrUnbalanced) {
		t.Fatalf("unbalanced post = %v", err)
	}
	mustVerifyPosted(t, w, ps[1:])
}

// mustVerifyPosted checks the ledger after the purchases ps were posted and
// nothing else: each one's shares are pending.
func mustVerifyPosted(t *testing.T, w *world, ps []purchase) {
	t.Helper()
	got := balances(t, w.db)
	want := map[Account]int64{}
	for _, p := range ps {
		for _, e := range must(PurchaseCompleted(p.sale)).Entries {
			want[e.Account] += e.Amount
		}
	}
	maps.DeleteFunc(got, func(_ Account, v int64) bool { return v == 0 })
	if !maps.Equal(got, want) {
		t.Fatalf("balances %s, want %s", formatSums(got), formatSums(want))
	}
}

// Many goroutines post overlapping sets of transactions, each set in a
// random order and in one database transaction, some sets sharing keys with
// others: no deadlock, no lost update, every balance exact.
func TestConcurrentPostsDoNotDeadlock(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 3, 4)
	rng := rand.New(rand.NewPCG(4, 4))
	ps := w.addPurchases(t, rng, 600, "usd")
	ps = append(ps, w.addPurchases(t, rng, 200, "eur")...)
	// A payee's payouts too: they lock the payee's accounts in the other
	// direction of a sale (available before pending in the entries).
	if _, err := w.db.ExecContext(ctx, `INSERT INTO payees (kind, id) SELECT 'creator', unnest(?::text[])`, pgArray(w.creators)); err != nil {
		t.Fatal(err)
	}
	// Eighty payouts of four creators: this test is about the ledger's
	// locks, so it lifts the payout engine's rule of one open payout per
	// payee and currency.
	if _, err := w.db.ExecContext(ctx, `DROP INDEX payouts_one_open_per_payee_currency`); err != nil {
		t.Fatal(err)
	}
	var payouts []*model.Payout
	for i := range 80 {
		p := &model.Payout{ID: uuidV7(t), PayeeKind: model.PayeeCreator, PayeeID: w.creators[i%len(w.creators)],
			Currency: "usd", AmountCents: int64(1 + i), Status: model.PayoutPending, CreatedAt: t0}
		p.TransferGroup = "payout:" + p.ID.String()
		payouts = append(payouts, p)
	}
	if _, err := w.db.NewInsert().Model(&payouts).Exec(ctx); err != nil {
		t.Fatal(err)
	}

	var all []Transaction
	for _, p := range ps {
		all = append(all, must(PurchaseCompleted(p.sale)))
	}
	for _, p := range payouts {
		t := must(PayoutCreated(p))
		t.NoOverdraft = nil // the payees have nothing available: this test is about locks
		all = append(all, t)
	}
	const workers = 12
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 5))
			for range 25 {
				set := make([]Transaction, 1+r.IntN(24))
				for i := range set {
					set[i] = all[r.IntN(len(all))]
				}
				err := w.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					_, err := PostMany(ctx, tx, set)
					return err
				})
				if err != nil {
					errs <- fmt.Errorf("worker %d: %w (SQLSTATE %s)", g, err, db.SQLState(err))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	// Post everything once more, so every transaction is in the ledger
	// exactly once, and compare with the sums in Go.
	postTx(t, w.db, all...)
	want := map[Account]int64{}
	for _, tx := range all {
		for _, e := range tx.Entries {
			want[e.Account] += e.Amount
		}
	}
	got := balances(t, w.db)
	maps.DeleteFunc(got, func(_ Account, v int64) bool { return v == 0 })
	maps.DeleteFunc(want, func(_ Account, v int64) bool { return v == 0 })
	if !maps.Equal(got, want) {
		t.Fatalf("balances %s\nwant %s", formatSums(got), formatSums(want))
	}
	mustVerify(t, w.db)
}

// A payout never takes more than the available balance it finds under the
// account's lock.
func TestPayoutCannotOverdraw(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 1, 1)
	ps := w.addPurchases(t, rand.New(rand.NewPCG(9, 9)), 3, "usd")
	var ts []Transaction
	for _, p := range ps {
		ts = append(ts, must(PurchaseCompleted(p.sale)), must(Release(p.sale, Book{PurchaseID: p.sale.PurchaseID, Posted: true}, t0)))
	}
	postTx(t, w.db, ts...)
	available := balances(t, w.db)[Account{Owner: "creator:cr_1", Currency: "usd", Kind: Available}]
	if _, err := w.db.ExecContext(ctx, `INSERT INTO payees (kind, id) VALUES ('creator', 'cr_1')`); err != nil {
		t.Fatal(err)
	}
	payout := func(amount int64) error {
		p := &model.Payout{ID: uuidV7(t), PayeeKind: model.PayeeCreator, PayeeID: "cr_1", Currency: "usd",
			AmountCents: amount, Status: model.PayoutPending, CreatedAt: t0}
		p.TransferGroup = "payout:" + p.ID.String()
		return w.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.NewInsert().Model(p).Exec(ctx); err != nil {
				return err
			}
			_, err := Post(ctx, tx, must(PayoutCreated(p)))
			return err
		})
	}
	if err := payout(available + 1); !errors.Is(err, ErrOverdraft) {
		t.Fatalf("payout of %d from %d available = %v, want ErrOverdraft", available+1, available, err)
	}
	if err := payout(available); err != nil {
		t.Fatalf("payout of all %d available: %v", available, err)
	}
	mustVerify(t, w.db)
}
