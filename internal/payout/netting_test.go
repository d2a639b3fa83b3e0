package payout_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/payout"
)

// A refund after the transfer takes the payee's available balance below
// zero; later sales net it, and no payout is made until the balance is back
// at the minimum. The health gauges see the negative balance and its age.
func TestRefundAfterTransferIsNettedByLaterSales(t *testing.T) {
	e := newEnv(t)
	e.payee(t, "alice")
	first := e.earn(t, "alice", 1000)
	r := e.runner(t, nil)
	e.run(t, r)
	e.refund(t, first)
	if got := e.balance(t, "alice", ledger.Available); got != -1000 {
		t.Fatalf("available after the refund = %d", got)
	}
	h, err := payout.ReadHealth(context.Background(), e.db, time.Now().Add(31*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if h.NegativeBalances != 1 || h.OldestNegativeAge < 30*24*time.Hour {
		t.Fatalf("health = %+v", h)
	}
	for _, st := range []struct {
		earn      int64
		available int64
		paid      bool
	}{
		{600, -400, false},
		{450, 50, false}, // positive but below the minimum of 100
		{100, 150, true},
	} {
		e.earn(t, "alice", st.earn)
		if got := e.balance(t, "alice", ledger.Available); got != st.available {
			t.Fatalf("after earning %d: available %d, want %d", st.earn, got, st.available)
		}
		s := e.run(t, r)
		if (s.Paid == 1) != st.paid {
			t.Fatalf("after earning %d: %+v", st.earn, s)
		}
	}
	trs := e.fake.Transfers()
	if len(trs) != 2 || trs[0].Amount != 1000 || trs[1].Amount != 150 {
		t.Fatalf("transfers = %+v", trs)
	}
	if h, err := payout.ReadHealth(context.Background(), e.db, time.Now()); err != nil || h.NegativeBalances != 0 {
		t.Fatalf("health after netting = %+v, %v", h, err)
	}
	e.mustVerify(t)
}

// Over random sales, refunds (some after the payout) and runs, every
// transfer is at least the minimum, and what each payee was transferred
// plus what it has left equals what it earned minus its refunds.
func TestNeverATransferBelowTheMinimum(t *testing.T) {
	e := newEnv(t)
	rng := rand.New(rand.NewPCG(3, 14))
	const payees = 6
	var sales [payees][]sale
	net := map[string]int64{}
	for n := range payees {
		e.payee(t, creatorN(n))
	}
	r := e.runner(t, nil)
	for step := range 150 {
		n := rng.IntN(payees)
		who := creatorN(n)
		switch k := rng.IntN(10); {
		case k < 6:
			s := e.earn(t, who, rng.Int64N(300))
			sales[n] = append(sales[n], s)
			net[who] += s.row.AmountPaidCents
		case k < 8 && len(sales[n]) > 0:
			i := rng.IntN(len(sales[n]))
			e.refund(t, sales[n][i])
			net[who] -= sales[n][i].row.AmountPaidCents
			sales[n] = append(sales[n][:i], sales[n][i+1:]...)
		default:
			e.run(t, r)
		}
		if step%25 == 0 {
			e.mustVerify(t)
		}
	}
	e.run(t, r)
	for _, tr := range e.fake.Transfers() {
		if tr.Amount < payout.DefaultMinimumCents {
			t.Errorf("transfer %s of %d, below the minimum", tr.ID, tr.Amount)
		}
	}
	for n := range payees {
		who := creatorN(n)
		have := e.balance(t, who, ledger.Available) + e.balance(t, who, ledger.PaidOut) + e.balance(t, who, ledger.InTransit)
		if have != net[who] {
			t.Errorf("%s: available + in transit + paid out = %d, earned net of refunds %d", who, have, net[who])
		}
		if a := e.balance(t, who, ledger.Available); a >= payout.DefaultMinimumCents {
			t.Errorf("%s: %d available after a final run", who, a)
		}
	}
	e.noDuplicates(t)
	e.mustVerify(t)
}
