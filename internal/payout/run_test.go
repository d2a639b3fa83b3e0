package payout_test

import (
	"context"
	"testing"

	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// A run pays each eligible payee's available balance once; a payee below
// the minimum, without payouts_enabled or without a payees row accrues but
// is not paid; a second run pays nothing more.
func TestRunPaysEachEligibleBalanceOnce(t *testing.T) {
	e := newEnv(t)
	acct := e.payee(t, "alice")
	e.payee(t, "bob")
	e.payee(t, "carol")
	if _, err := e.db.NewRaw(`UPDATE payees SET payouts_enabled = false WHERE id = 'carol'`).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.earn(t, "alice", 300)
	e.earn(t, "alice", 200)
	e.earn(t, "bob", 99)    // below the 100 minimum
	e.earn(t, "carol", 700) // payouts not enabled
	e.earn(t, "dave", 900)  // no payee row
	held := e.earnHeld(t, "alice", 1000)

	r := e.runner(t, nil)
	s := e.run(t, r)
	if s.Created != 1 || s.Paid != 1 || s.PaidCents["usd"] != 500 || s.BelowMin != 1 {
		t.Fatalf("summary = %+v", s)
	}
	p := e.payoutOf(t, "alice")
	if p.Status != model.PayoutPaid || p.AmountCents != 500 || p.Attempts != 1 || p.StripeTransferID == nil {
		t.Fatalf("payout = %+v", p)
	}
	trs := e.fake.Transfers()
	if len(trs) != 1 || trs[0].Amount != 500 || trs[0].Destination != acct || trs[0].TransferGroup != p.TransferGroup ||
		trs[0].Metadata[payout.MetadataPayoutID] != p.ID.String() {
		t.Fatalf("transfers = %+v", trs)
	}
	for _, c := range []struct {
		who  string
		kind ledger.Kind
		want int64
	}{
		{"alice", ledger.Available, 0}, {"alice", ledger.PaidOut, 500}, {"alice", ledger.InTransit, 0}, {"alice", ledger.Pending, 1000},
		{"bob", ledger.Available, 99}, {"carol", ledger.Available, 700}, {"dave", ledger.Available, 900},
	} {
		if got := e.balance(t, c.who, c.kind); got != c.want {
			t.Errorf("%s %s = %d, want %d", c.who, c.kind, got, c.want)
		}
	}
	if n := e.outboxCount(t, "payouts.created"); n != 1 {
		t.Errorf("payouts.created events = %d", n)
	}
	if n := e.outboxCount(t, "payouts.paid"); n != 1 {
		t.Errorf("payouts.paid events = %d", n)
	}
	if v := testenv.Metric(t, e.reg, "paystream_payouts_total", map[string]string{"status": "paid"}); v != 1 {
		t.Errorf("paystream_payouts_total{status=paid} = %v", v)
	}

	s = e.run(t, r)
	if s.Created != 0 || s.Paid != 0 || len(e.fake.Transfers()) != 1 {
		t.Fatalf("second run: %+v, %d transfers", s, len(e.fake.Transfers()))
	}
	// The held sale is paid once its hold ends.
	if _, err := ledger.ReleaseDue(context.Background(), e.db, ledger.Config{Hold: 0}, e.clock.Now(), 10); err != nil {
		t.Fatal(err)
	}
	s = e.run(t, r)
	if s.Paid != 1 || s.PaidCents["usd"] != 1000 {
		t.Fatalf("after release: %+v (held %s)", s, held.row.ID)
	}
	e.noDuplicates(t)
	e.mustVerify(t)
}

// A dry run reports what it would pay and writes and sends nothing.
func TestDryRun(t *testing.T) {
	e := newEnv(t)
	e.payee(t, "alice")
	e.earn(t, "alice", 250)
	s, err := e.runner(t, nil).Run(context.Background(), payout.RunOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	want := payout.Planned{Payee: payout.PayeeRef{Kind: "creator", ID: "alice"}, Currency: "usd", AmountCents: 250}
	if len(s.Planned) != 1 || s.Planned[0] != want || s.Created != 0 {
		t.Fatalf("dry run = %+v", s)
	}
	if len(e.payouts(t)) != 0 || len(e.fake.Transfers()) != 0 {
		t.Fatal("a dry run wrote a payout or made a transfer")
	}
}

// --payee narrows a run to one payee.
func TestRunOnePayee(t *testing.T) {
	e := newEnv(t)
	e.payee(t, "alice")
	e.payee(t, "bob")
	e.earn(t, "alice", 250)
	e.earn(t, "bob", 250)
	ref, err := payout.ParsePayeeRef("creator:bob")
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.runner(t, nil).Run(context.Background(), payout.RunOptions{Payee: &ref})
	if err != nil || s.Paid != 1 {
		t.Fatalf("run = %+v, %v", s, err)
	}
	if e.balance(t, "alice", ledger.Available) != 250 || e.balance(t, "bob", ledger.PaidOut) != 250 {
		t.Fatal("the run paid someone else than bob")
	}
}

func TestParsePayeeRef(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"creator:c1", true}, {"organization:00000000-0000-4000-8000-000000000001", true},
		{"organization:acme", false}, {"creator:", false}, {"user:x", false}, {"creator", false},
	} {
		if _, err := payout.ParsePayeeRef(tt.in); (err == nil) != tt.ok {
			t.Errorf("ParsePayeeRef(%q) error = %v, want ok %t", tt.in, err, tt.ok)
		}
	}
}
