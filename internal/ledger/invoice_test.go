package ledger

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/model"
)

// invoice is a paid subscription invoice the tests made, with its sale.
type invoice struct {
	row  model.SubscriptionInvoice
	sale InvoiceSale
}

// addInvoices inserts, in w's first organization, a creator plan of each
// creator and an organization plan, a subscription of each, and n paid
// invoices spread over them with random amounts and rates (paid at t0 + i
// seconds).
func (w *world) addInvoices(t *testing.T, rng *rand.Rand, n int, cur string) []invoice {
	t.Helper()
	ctx := context.Background()
	org := w.orgs[0]
	type plan struct {
		id, sub string
		creator *string
	}
	var plans []plan
	for i := range len(w.creators) + 1 {
		p := plan{id: uuid.NewString(), sub: fmt.Sprintf("sub_%s_%d", uuid.NewString()[:8], i)}
		if i < len(w.creators) {
			p.creator = &w.creators[i]
		}
		plans = append(plans, p)
		if _, err := w.db.ExecContext(ctx, `INSERT INTO subscription_plans (id, organization_id, creator_id, name, price_cents, currency, interval)
			VALUES (?, ?, ?, 'plan', 1000, ?, 'month')`, p.id, org, p.creator, cur); err != nil {
			t.Fatal(err)
		}
		if _, err := w.db.ExecContext(ctx, `INSERT INTO subscriptions (id, customer_id, plan_id, status, current_period_start,
			current_period_end, event_created, last_event_id, access_until) VALUES (?, 'u1', ?, 'active', ?, ?, ?, 'evt_1', ?)`,
			p.sub, p.id, t0, t0.Add(720*time.Hour), t0, t0.Add(720*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	out := make([]invoice, n)
	rows := make([]model.SubscriptionInvoice, n)
	for i := range n {
		p := plans[rng.IntN(len(plans))]
		amount := rng.Int64N(100_000)
		if i%10 == 0 {
			amount = rng.Int64N(10) // rounding at its worst; 0 is a trial's invoice
		}
		terms := split.Terms{PlatformBps: rng.IntN(split.MaxBps + 1), OrganizationBps: rng.IntN(split.MaxBps + 1)}
		if p.creator == nil {
			terms.OrganizationBps = split.MaxBps // the organization takes the creators' share
		}
		sp, err := split.Compute(amount, terms)
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("in_%s%04d", uuid.NewString()[:8], i)
		rows[i] = model.SubscriptionInvoice{
			ID: id, SubscriptionID: p.sub, PlanID: uuid.MustParse(p.id), OrganizationID: org, CreatorID: p.creator,
			PeriodStart: t0, PeriodEnd: t0.Add(720 * time.Hour), AmountPaidCents: amount, Currency: cur,
			PlatformFeeCents: sp.Platform, OrganizationFeeCents: sp.Organization, CreatorPayoutCents: sp.Creator,
			PlatformFeeBps: sp.PlatformBps, OrganizationFeeBps: sp.OrganizationBps, Status: model.InvoicePaid,
			PaidAt: t0.Add(time.Duration(i) * time.Second),
		}
		s, err := InvoiceSaleOf(&rows[i])
		if err != nil {
			t.Fatal(err)
		}
		out[i] = invoice{row: rows[i], sale: s}
	}
	if _, err := w.db.NewInsert().Model(&rows).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	return out
}

// setReturned writes an invoice's refund and dispute as the subscription
// store would: status and reversal derived from them.
func setReturned(ctx context.Context, idb bun.IDB, inv *model.SubscriptionInvoice, refunded int64, dispute string, disputed int64) error {
	inv.RefundAmountCents, inv.DisputeAmountCents = refunded, disputed
	inv.DisputeStatus = nil
	if dispute != "" {
		inv.DisputeStatus = &dispute
	}
	switch {
	case refunded == 0:
		inv.Status = model.InvoicePaid
	case refunded < inv.AmountPaidCents:
		inv.Status = model.InvoicePartiallyRefunded
	default:
		inv.Status = model.InvoiceRefunded
		at := inv.PaidAt
		inv.RefundedAt = &at
	}
	ret := refunded
	if dispute == model.DisputeLost {
		ret += disputed
	}
	rev, err := split.Reversal(split.Split{Amount: inv.AmountPaidCents, Platform: inv.PlatformFeeCents,
		Organization: inv.OrganizationFeeCents, Creator: inv.CreatorPayoutCents}, min(ret, inv.AmountPaidCents))
	if err != nil {
		return err
	}
	inv.ReversedPlatformFeeCents, inv.ReversedOrganizationFeeCents, inv.ReversedCreatorPayoutCents =
		rev.Platform, rev.Organization, rev.Creator
	_, err = idb.NewUpdate().Model(inv).WherePK().Exec(ctx)
	return err
}

// An invoice's rules post exactly what the purchase rules post for a
// purchase of the same split and parties, under the invoice's keys.
func TestInvoiceRulesAreThePurchaseRules(t *testing.T) {
	rng := rand.New(rand.NewPCG(20, 20))
	org := uuid.MustParse("00000000-0000-4000-8000-000000000001")
	at := t0.Add(time.Hour)
	for i := range 5000 {
		amount := rng.Int64N(1_000_000)
		terms := split.Terms{PlatformBps: rng.IntN(split.MaxBps + 1), OrganizationBps: rng.IntN(split.MaxBps + 1)}
		creator := "cr_7"
		if i%3 == 0 {
			creator, terms.OrganizationBps = "", split.MaxBps
		}
		sp, err := split.Compute(amount, terms)
		if err != nil {
			t.Fatal(err)
		}
		inv := InvoiceSale{InvoiceID: fmt.Sprintf("in_%d", i), Currency: "eur", Split: sp, OrganizationID: org,
			CreatorID: creator, PaidAt: t0}
		purchaseCreator := creator
		if creator == "" {
			purchaseCreator = "cr_unused" // its share is 0: no entry names it
		}
		sale := Sale{PurchaseID: uuid.New(), Currency: "eur", Split: sp, OrganizationID: org, CreatorID: purchaseCreator, PurchasedAt: t0}
		ib, pb := inv.EmptyBook(), Book{PurchaseID: sale.PurchaseID}
		refund := rng.Int64N(amount + 2)
		disputed := rng.Int64N(amount + 1)
		steps := []struct {
			name string
			inv  func() (Transaction, error)
			pur  func() (Transaction, error)
			key  string
		}{
			{"sale", func() (Transaction, error) { return InvoicePaid(inv) }, func() (Transaction, error) { return PurchaseCompleted(sale) },
				"invoice:" + inv.InvoiceID},
			{"refund", func() (Transaction, error) { return InvoiceRefund(inv, ib, refund, "re_1", at) },
				func() (Transaction, error) { return Refund(sale, pb, refund, "re_1", at) },
				fmt.Sprintf("refund:%s:%d", inv.InvoiceID, min(refund, amount))},
			{"dispute opened", func() (Transaction, error) { return InvoiceDisputeOpened(inv, ib, disputed, "du_1", at) },
				func() (Transaction, error) { return DisputeOpened(sale, pb, disputed, "du_1", at) },
				"dispute:" + inv.InvoiceID + ":opened"},
			{"release", func() (Transaction, error) { return InvoiceRelease(inv, ib, at) },
				func() (Transaction, error) { return Release(sale, pb, at) }, "release:" + inv.InvoiceID},
			{"dispute lost", func() (Transaction, error) { return InvoiceDisputeLost(inv, ib, disputed, "du_1", at) },
				func() (Transaction, error) { return DisputeLost(sale, pb, disputed, "du_1", at) },
				"dispute:" + inv.InvoiceID + ":closed"},
		}
		for _, st := range steps {
			it, err := st.inv()
			if err != nil {
				t.Fatalf("invoice %d %s: %v", i, st.name, err)
			}
			pt, err := st.pur()
			if err != nil {
				t.Fatalf("purchase %d %s: %v", i, st.name, err)
			}
			if it.IsZero() != pt.IsZero() {
				t.Fatalf("%d %s: invoice zero %t, purchase zero %t", i, st.name, it.IsZero(), pt.IsZero())
			}
			if it.IsZero() {
				continue
			}
			if err := it.Validate(); err != nil {
				t.Fatalf("%d %s: %v", i, st.name, err)
			}
			if it.Key != st.key || it.InvoiceID != inv.InvoiceID || it.PurchaseID != uuid.Nil || it.Amount != pt.Amount ||
				invoiceCause[pt.Cause] != it.Cause || !slices.Equal(it.Entries, pt.Entries) {
				t.Fatalf("%d %s:\ninvoice  %+v\npurchase %+v", i, st.name, it, pt)
			}
			if err := inv.Fold(&ib, it); err != nil {
				t.Fatal(err)
			}
			if err := pb.apply(sale, pt); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestInvoiceSaleRefusesWhatTheSchemaWould(t *testing.T) {
	org := uuid.New()
	sp := split.Split{Amount: 100, Platform: 10, Organization: 0, Creator: 90}
	for _, tt := range []struct {
		name string
		s    InvoiceSale
	}{
		{"not an invoice id", InvoiceSale{InvoiceID: "sub_1", Currency: "usd", Split: sp, OrganizationID: org, CreatorID: "c", PaidAt: t0}},
		{"organization plan paying a creator", InvoiceSale{InvoiceID: "in_1", Currency: "usd", Split: sp, OrganizationID: org, PaidAt: t0}},
		{"no paid time", InvoiceSale{InvoiceID: "in_1", Currency: "usd", Split: sp, OrganizationID: org, CreatorID: "c"}},
		{"shares do not sum", InvoiceSale{InvoiceID: "in_1", Currency: "usd", Split: split.Split{Amount: 100, Platform: 10, Creator: 89},
			OrganizationID: org, CreatorID: "c", PaidAt: t0}},
	} {
		if _, err := InvoicePaid(tt.s); err == nil {
			t.Errorf("%s: InvoicePaid accepted %+v", tt.name, tt.s)
		}
	}
}

// Property: whatever refunds and dispute steps an invoice goes through
// (random steps, a release anywhere among them), posting InvoiceCatchUp of its row after
// each one leaves postings Verify accepts, a replay posts nothing, and a
// release and a second pass of the catch-up change nothing.
func TestInvoiceCatchUpProperty(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 1, 3)
	rng := rand.New(rand.NewPCG(21, 21))
	invs := w.addInvoices(t, rng, 300, "usd")
	for _, inv := range invs {
		row := inv.row
		amount := row.AmountPaidCents
		// The row's facts only grow: refunds are cumulative, a dispute
		// moves forward (none → open → won/lost, a close may come alone).
		type step struct {
			refunded int64
			dispute  string
			disputed int64
		}
		var steps []step
		refunded, dispute, disputed := int64(0), "", rng.Int64N(amount+1)
		for range rng.IntN(5) {
			switch rng.IntN(4) {
			case 0, 1:
				refunded = min(amount, refunded+rng.Int64N(amount/2+2))
			case 2:
				if dispute == "" {
					dispute = model.DisputeOpen
				}
			case 3:
				if dispute == "" || dispute == model.DisputeOpen {
					dispute = []string{model.DisputeWon, model.DisputeLost}[rng.IntN(2)]
				}
			}
			steps = append(steps, step{refunded, dispute, disputed})
		}
		if len(steps) > 0 && rng.IntN(3) == 0 { // a release inside the story
			if _, err := ReleaseDue(ctx, w.db, Config{Hold: 0}, t0.Add(time.Hour), 1000); err != nil {
				t.Fatal(err)
			}
		}
		for i, st := range append([]step{{}}, steps...) {
			err := w.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				if err := setReturned(ctx, tx, &row, st.refunded, st.dispute, st.disputed); err != nil {
					return err
				}
				b, err := LoadInvoiceBook(ctx, tx, inv.sale)
				if err != nil {
					return err
				}
				ts, err := InvoiceCatchUp(inv.sale, b, InvoiceState{Refunded: st.refunded, RefundID: "re_x",
					Dispute: st.dispute, DisputeAmount: st.disputed, DisputeID: "du_x"}, t0.Add(time.Duration(i)*time.Minute))
				if err != nil {
					return err
				}
				_, err = PostMany(ctx, tx, ts)
				return err
			})
			if err != nil {
				t.Fatalf("invoice %s step %d %+v: %v", row.ID, i, st, err)
			}
		}
		// A replay of the last step finds nothing to post.
		b, err := LoadInvoiceBook(ctx, w.db, inv.sale)
		if err != nil {
			t.Fatal(err)
		}
		var disputeStatus string
		if row.DisputeStatus != nil {
			disputeStatus = *row.DisputeStatus
		}
		again, err := InvoiceCatchUp(inv.sale, b, InvoiceState{Refunded: row.RefundAmountCents, Dispute: disputeStatus,
			DisputeAmount: row.DisputeAmountCents}, t0)
		if err != nil || len(again) != 0 {
			t.Fatalf("invoice %s: catch-up after the last step = %v, %v; want nothing", row.ID, again, err)
		}
	}
	mustVerify(t, w.db)
	if _, err := ReleaseDue(ctx, w.db, Config{Hold: 0}, t0.Add(time.Hour), 1000); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, w.db)
}

func TestReleaseDueReleasesInvoices(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 1, 2)
	ps := w.addPurchases(t, rand.New(rand.NewPCG(22, 22)), 5, "usd")   // purchased at t0 + i seconds
	invs := w.addInvoices(t, rand.New(rand.NewPCG(23, 23)), 10, "usd") // paid at t0 + i seconds
	var ts []Transaction
	for _, p := range ps {
		ts = append(ts, must(PurchaseCompleted(p.sale)))
	}
	for _, inv := range invs {
		ts = append(ts, must(InvoicePaid(inv.sale)))
	}
	postTx(t, w.db, ts...)
	cfg := Config{Hold: time.Hour}
	now := t0.Add(time.Hour + 6*time.Second) // purchases 0…4 and invoices 0…6 are due
	n, err := ReleaseDue(ctx, w.db, cfg, now, 8)
	if err != nil || n != 8 {
		t.Fatalf("first run = %d, %v; want the limit, 8 (5 purchases, 3 invoices)", n, err)
	}
	n, err = ReleaseDue(ctx, w.db, cfg, now, 100)
	if err != nil || n != 4 {
		t.Fatalf("second run = %d, %v; want the other 4 invoices due", n, err)
	}
	books, err := LoadInvoiceBooks(ctx, w.db, []InvoiceSale{invs[6].sale, invs[7].sale})
	if err != nil {
		t.Fatal(err)
	}
	if !books[invs[6].sale.InvoiceID].Released || books[invs[7].sale.InvoiceID].Released {
		t.Fatalf("books = %+v", books)
	}
	mustVerify(t, w.db)
}

// Verify finds an invoice whose postings and row disagree.
func TestVerifyFindsInvoiceDifferences(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 1, 1)
	invs := w.addInvoices(t, rand.New(rand.NewPCG(24, 24)), 6, "usd")
	var target invoice
	var ts []Transaction
	for _, inv := range invs {
		sp := inv.sale.Split
		if sp.Amount >= 100 && sp.Platform >= 4 && sp.Creator >= 4 && inv.sale.CreatorID != "" && target.row.ID == "" {
			target = inv
		}
		ts = append(ts, must(InvoicePaid(inv.sale)))
	}
	if target.row.ID == "" {
		t.Fatal("no creator plan invoice of at least 100 paying platform and creator among the fixtures")
	}
	postTx(t, w.db, ts...)
	mustVerify(t, w.db)
	id := target.row.ID
	expect := func(t *testing.T, what string) {
		t.Helper()
		d, err := Verify(ctx, w.db)
		if err != nil {
			t.Fatal(err)
		}
		if d == nil || d.Check != CheckInvoice || d.Subject != "invoice "+id {
			t.Fatalf("%s: Verify = %v, want an %s difference on invoice %s", what, d, CheckInvoice, id)
		}
	}
	// A refund the ledger never saw.
	row := target.row
	half := row.AmountPaidCents / 2
	if err := setReturned(ctx, w.db, &row, half, "", 0); err != nil {
		t.Fatal(err)
	}
	expect(t, "refund not posted")
	b, err := LoadInvoiceBook(ctx, w.db, target.sale)
	if err != nil {
		t.Fatal(err)
	}
	postTx(t, w.db, must(InvoiceRefund(target.sale, b, half, "re_1", t0)))
	mustVerify(t, w.db)
	// The row's reversal disagrees with what the ledger gave back, in a
	// way the row's own constraints allow (a manual fix could do it).
	if _, err := w.db.ExecContext(ctx, `UPDATE subscription_invoices SET reversed_platform_fee_cents = reversed_platform_fee_cents + 1,
		reversed_creator_payout_cents = reversed_creator_payout_cents - 1 WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	expect(t, "reversal differs")
	if _, err := w.db.ExecContext(ctx, `UPDATE subscription_invoices SET reversed_platform_fee_cents = reversed_platform_fee_cents - 1,
		reversed_creator_payout_cents = reversed_creator_payout_cents + 1 WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, w.db)
	// An invoice recorded but never posted.
	more := w.addInvoices(t, rand.New(rand.NewPCG(25, 25)), 1, "usd")
	d, err := Verify(ctx, w.db)
	if err != nil || d == nil || d.Check != CheckInvoice || d.Subject != "invoice "+more[0].row.ID {
		t.Fatalf("unposted invoice: Verify = %v, %v", d, err)
	}
}

func TestInvoiceLedgerSchemaConstraints(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, 1, 1)
	invs := w.addInvoices(t, rand.New(rand.NewPCG(26, 26)), 1, "usd")
	ps := w.addPurchases(t, rand.New(rand.NewPCG(27, 27)), 1, "usd")
	postTx(t, w.db, must(InvoicePaid(invs[0].sale)))
	inv, pid := invs[0].row.ID, ps[0].row.ID.String()
	tx := func(key, cause, purchase, invoice string) string {
		return `INSERT INTO ledger_transactions (idempotency_key, cause, purchase_id, invoice_id, amount_cents, effective_at)
		 VALUES ('` + key + `', '` + cause + `', ` + purchase + `, ` + invoice + `, 0, now())`
	}
	for _, tt := range []struct{ name, query, state string }{
		{"second invoice posting", tx("invoice:"+inv, "invoice", "NULL", "'"+inv+"'"), db.UniqueViolation},
		{"invoice cause about a purchase", tx("invoice:"+pid, "invoice", "'"+pid+"'", "NULL"), db.CheckViolation},
		{"invoice cause about both", tx("release:"+inv, "invoice_release", "'"+pid+"'", "'"+inv+"'"), db.CheckViolation},
		{"purchase cause about an invoice", tx("release:"+inv, "release", "NULL", "'"+inv+"'"), db.CheckViolation},
		{"key not of its cause", tx("release:in_other", "invoice_release", "NULL", "'"+inv+"'"), db.CheckViolation},
		{"posting of no invoice", tx("release:in_none", "invoice_release", "NULL", "'in_none'"), db.ForeignKeyViolation},
		{"unknown cause", tx("renewal:"+inv, "invoice_renewal", "NULL", "'"+inv+"'"), db.CheckViolation},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := w.db.ExecContext(ctx, tt.query)
			if got := db.SQLState(err); got != tt.state {
				t.Fatalf("SQLSTATE = %q (%v), want %s", got, err, tt.state)
			}
		})
	}
}
