package ledger

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/model"
)

// Verify finds each kind of difference, and names what to look at.
func TestVerifyFindsDifferences(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 2, 2)
	ps := w.addPurchases(t, rand.New(rand.NewPCG(7, 7)), 20, "usd")
	var ts []Transaction
	for _, p := range ps {
		ts = append(ts, must(PurchaseCompleted(p.sale)))
	}
	postTx(t, w.db, ts...)
	mustVerify(t, w.db)

	// Steps run in order on one database; each tampers, expects a
	// difference, and repairs (the last ones cannot be repaired).
	target := ps[5]
	for _, p := range ps {
		if p.sale.Split.Creator > 0 && p.sale.Split.Platform > 0 {
			target = p
			break
		}
	}
	pid := target.row.ID.String()
	creatorPending := `(SELECT id FROM ledger_accounts WHERE owner = '` + target.sale.owner(creator) + `' AND currency = 'usd' AND kind = 'pending')`
	exec := func(t *testing.T, qs ...string) {
		t.Helper()
		err := w.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			for _, q := range qs {
				if _, err := tx.ExecContext(ctx, q); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// bypass runs qs with every trigger off (superuser): what a buggy
	// migration or a manual fix could do.
	bypass := func(t *testing.T, qs ...string) {
		t.Helper()
		exec(t, append([]string{`SET LOCAL session_replication_role = replica`}, qs...)...)
	}
	steps := []struct {
		name    string
		tamper  func(t *testing.T)
		check   string
		subject string
		repair  func(t *testing.T)
	}{
		{"a refund the ledger never saw",
			func(t *testing.T) {
				exec(t, `UPDATE purchases SET refund_amount_cents = 1, status = 'partially_refunded' WHERE id = '`+pid+`'`)
			},
			CheckPurchase, "purchase " + pid,
			func(t *testing.T) {
				exec(t, `UPDATE purchases SET refund_amount_cents = 0, status = 'completed' WHERE id = '`+pid+`'`)
			}},
		{"a lost dispute the ledger never saw",
			func(t *testing.T) {
				exec(t, `UPDATE purchases SET dispute_status = 'lost', status = 'dispute_lost' WHERE id = '`+pid+`'`)
			},
			CheckPurchase, "purchase " + pid,
			func(t *testing.T) {
				exec(t, `UPDATE purchases SET dispute_status = NULL, status = 'completed' WHERE id = '`+pid+`'`)
			}},
		{"a paid purchase with no posting",
			func(t *testing.T) {
				exec(t, `INSERT INTO purchases (id, customer_id, content_id, organization_id, amount_paid_cents, currency,
					platform_fee_cents, organization_fee_cents, creator_payout_cents, platform_fee_bps, organization_fee_bps,
					stripe_checkout_session_id, status, purchased_at)
					SELECT '00000000-0000-7000-8000-0000000000ee', customer_id, content_id, organization_id, amount_paid_cents, currency,
					platform_fee_cents, organization_fee_cents, creator_payout_cents, platform_fee_bps, organization_fee_bps,
					'cs_unposted', 'completed', purchased_at FROM purchases WHERE id = '`+pid+`'`)
			},
			CheckPurchase, "purchase 00000000-0000-7000-8000-0000000000ee",
			func(t *testing.T) {
				exec(t, `UPDATE purchases SET status = 'failed', failed_at = now() WHERE id = '00000000-0000-7000-8000-0000000000ee'`)
			}},
		{"a payout in transit with no posting",
			func(t *testing.T) {
				p := &model.Payout{ID: uuidV7(t), PayeeKind: model.PayeeCreator, PayeeID: w.creators[0], Currency: "usd",
					AmountCents: 100, Status: model.PayoutInTransit, CreatedAt: t0}
				p.TransferGroup = "payout:" + p.ID.String()
				exec(t, `INSERT INTO payees (kind, id) VALUES ('creator', '`+w.creators[0]+`')`)
				if _, err := w.db.NewInsert().Model(p).Exec(ctx); err != nil {
					t.Fatal(err)
				}
			},
			CheckPayout, "payout ",
			func(t *testing.T) {
				exec(t, `UPDATE payouts SET status = 'canceled', canceled_at = now()`)
			}},
		{"a stored balance off by a cent",
			func(t *testing.T) {
				exec(t, `UPDATE ledger_accounts SET balance = balance + 1 WHERE id = `+creatorPending)
			},
			CheckAccountBalance, "account ",
			func(t *testing.T) {
				exec(t, `UPDATE ledger_accounts SET balance = balance - 1 WHERE id = `+creatorPending)
			}},
		{"an entry's balance_after edited",
			func(t *testing.T) {
				bypass(t, `UPDATE ledger_entries SET balance_after = balance_after + 1 WHERE account_id = `+creatorPending+` AND account_version = 1`)
			},
			CheckEntrySequence, "account ",
			func(t *testing.T) {
				bypass(t, `UPDATE ledger_entries SET balance_after = balance_after - 1 WHERE account_id = `+creatorPending+` AND account_version = 1`)
			}},
		{"an entry's amount edited",
			func(t *testing.T) {
				bypass(t, `UPDATE ledger_entries SET amount = amount + 1 WHERE account_id = `+creatorPending+` AND account_version = 1`)
			},
			CheckTransactionBalanced, "transaction ", nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.tamper(t)
			d, err := Verify(ctx, w.db)
			if err != nil {
				t.Fatal(err)
			}
			if d == nil || d.Check != st.check || !strings.HasPrefix(d.Subject, st.subject) {
				t.Fatalf("Verify = %v, want %s on %s…", d, st.check, st.subject)
			}
			t.Logf("found: %v", d)
			if st.repair != nil {
				st.repair(t)
				mustVerify(t, w.db)
			}
		})
	}
}

// ReleaseDue releases what is due and only that, once.
func TestReleaseDue(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 1, 2)
	ps := w.addPurchases(t, rand.New(rand.NewPCG(8, 8)), 30, "usd") // purchased_at t0 + i seconds
	var ts []Transaction
	for _, p := range ps[:25] { // the last five are still pending: not posted
		ts = append(ts, must(PurchaseCompleted(p.sale)))
	}
	postTx(t, w.db, ts...)
	if _, err := w.db.NewUpdate().Table("purchases").Set("status = 'pending'").
		Where("id IN (?)", bun.In([]any{ps[25].row.ID, ps[26].row.ID, ps[27].row.ID, ps[28].row.ID, ps[29].row.ID})).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Hold: time.Hour}
	now := t0.Add(time.Hour + 9*time.Second) // purchases 0…9 are due
	n, err := ReleaseDue(ctx, w.db, cfg, now, 4)
	if err != nil || n != 4 {
		t.Fatalf("first run = %d, %v; want the limit, 4", n, err)
	}
	n, err = ReleaseDue(ctx, w.db, cfg, now, 100)
	if err != nil || n != 6 {
		t.Fatalf("second run = %d, %v; want the other 6 due", n, err)
	}
	if n, err = ReleaseDue(ctx, w.db, cfg, now, 100); err != nil || n != 0 {
		t.Fatalf("third run = %d, %v; want nothing", n, err)
	}
	books, err := LoadBooks(ctx, w.db, []Sale{ps[9].sale, ps[10].sale, ps[29].sale})
	if err != nil {
		t.Fatal(err)
	}
	if !books[ps[9].sale.PurchaseID].Released || books[ps[10].sale.PurchaseID].Released || books[ps[29].sale.PurchaseID].Posted {
		t.Fatalf("books = %+v", books)
	}
	mustVerify(t, w.db)
	if _, err := ReleaseDue(ctx, w.db, Config{Hold: -time.Second}, now, 1); err == nil {
		t.Error("a negative hold: no error")
	}
}
