package payout_test

import (
	"context"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/testenv"
)

// Reconcile matches Stripe's transfers with the payouts and reports each
// kind of difference, and the gauge counts them.
func TestReconcileReportsDifferences(t *testing.T) {
	e := newEnv(t)
	for _, who := range []string{"alice", "bob", "carol", "dave"} {
		e.payee(t, who)
		e.earn(t, who, 500)
	}
	e.run(t, e.runner(t, nil))
	since := time.Now().Add(-time.Hour)
	rep, err := payout.Reconcile(context.Background(), e.db, e.stripe, since, e.metrics)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Listed != 4 || rep.Matched != 4 || rep.Differences() != 0 {
		t.Fatalf("clean report = %+v", rep)
	}

	ctx := context.Background()
	alice, bob, carol := e.payoutOf(t, "alice"), e.payoutOf(t, "bob"), e.payoutOf(t, "carol")
	// extra: a second transfer in alice's group
	if _, err := e.stripe.CreateTransfer(ctx, payout.TransferRequest{Amount: 500, Currency: "usd", Destination: "acct_alice",
		TransferGroup: alice.TransferGroup}, "dup"); err != nil {
		t.Fatal(err)
	}
	// reversed: bob's transfer reversed at Stripe, the event not applied
	if _, err := e.fake.Reverse(*bob.StripeTransferID, 100); err != nil {
		t.Fatal(err)
	}
	// missing: carol's payout records a transfer Stripe does not have
	if _, err := e.db.NewRaw(`UPDATE payouts SET stripe_transfer_id = 'tr_lost' WHERE id = ?`, carol.ID).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// amount: dave's payout says another amount than the transfer
	if _, err := e.db.NewRaw(`UPDATE payouts SET amount_cents = 499 WHERE payee_id = 'dave'`).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// foreign: a transfer outside paystream
	if _, err := e.stripe.CreateTransfer(ctx, payout.TransferRequest{Amount: 1, Currency: "usd", Destination: "acct_alice",
		TransferGroup: "order_9"}, "foreign"); err != nil {
		t.Fatal(err)
	}
	// unsettled: erin's run crashed between Stripe's answer and its commit
	e.payee(t, "erin")
	e.earn(t, "erin", 500)
	if _, err := e.runner(t, nil, payout.WithFault(stopAt(payout.StepAfterAnswer))).Run(ctx, payout.RunOptions{}); err == nil {
		t.Fatal("the crashed run reported no error")
	}
	rep, err = payout.Reconcile(ctx, e.db, e.stripe, since, e.metrics)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Unsettled != 1 {
		t.Fatalf("unsettled = %d, want erin's", rep.Unsettled)
	}
	// carol's transfer is also extra: her payout records another one.
	if len(rep.Extra) != 2 || len(rep.Reversed) != 1 || len(rep.Missing) != 1 || len(rep.Amount) != 1 || rep.Foreign != 1 {
		t.Fatalf("report = %+v", rep)
	}
	for kind, want := range map[string]float64{"extra": 2, "reversed": 1, "missing": 1, "amount": 1} {
		if v := testenv.Metric(t, e.reg, "paystream_payouts_reconcile_differences", map[string]string{"kind": kind}); v != want {
			t.Errorf("differences{kind=%s} = %v, want %v", kind, v, want)
		}
	}
}
