package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/payout/stripefake"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// payoutsCLI runs the CLI with args and returns stdout and stderr together.
func payoutsCLI(t *testing.T, env config.Getenv, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, env, &out, &errOut)
	return out.String() + errOut.String(), err
}

// A purchase from before the ledger fails `ledger verify` until `ledger
// backfill` posts it; `payouts run` then releases and pays it (a dry run
// first changes nothing), `payouts reconcile` finds Stripe's transfer
// matching, and the ledger still verifies.
func TestLedgerAndPayoutsCommands(t *testing.T) {
	bdb, dsn := testenv.DB(t)
	fake := stripefake.New(t)
	ctx := context.Background()
	org, content, id := uuid.New(), uuid.New(), uuid.Must(uuid.NewV7())
	at := time.Now().Add(-time.Hour)
	acct := "acct_alice"
	fake.AddAccount(acct)
	for _, row := range []any{
		&model.Content{ID: content, CreatorID: "alice", OrganizationID: org, PriceCents: 700, Currency: "usd", Visibility: "public"},
		&model.Purchase{ID: id, CustomerID: "u1", ContentID: content, OrganizationID: org, AmountPaidCents: 700, Currency: "usd",
			CreatorPayoutCents: 700, StripeCheckoutSessionID: "cs_1", Status: model.PurchaseCompleted, PurchasedAt: &at},
		&model.Payee{Kind: model.PayeeCreator, ID: "alice", StripeAccountID: &acct, PayoutsEnabled: true, RequirementsDue: model.JSON("[]")},
	} {
		if _, err := bdb.NewInsert().Model(row).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	env := config.MapEnv(map[string]string{"DATABASE_URL": dsn, "STRIPE_SECRET_KEY": stripefake.Key, "STRIPE_API_BASE": fake.URL,
		"STRIPE_MAX_NETWORK_RETRIES": "0", "PAYOUT_HOLD": "0s"})
	steps := []struct {
		args    []string
		want    string
		wantErr bool
	}{
		{[]string{"ledger", "verify"}, "purchase_postings", true},
		{[]string{"ledger", "backfill", "--batch", "10"}, "posted 1 purchases", false},
		{[]string{"ledger", "backfill"}, "posted 0 purchases", false},
		{[]string{"ledger", "verify"}, "ledger verify: ok", false},
		{[]string{"payouts", "run", "--dry-run"}, "would pay 0 balances", false}, // a dry run releases nothing
		{[]string{"payouts", "run", "--payee", "user:x"}, "", true},
		{[]string{"payouts", "run"}, "paid       1", false},
		{[]string{"payouts", "run"}, "created    0", false},
		{[]string{"payouts", "reconcile", "--since", "1h"}, "matched   1", false},
		{[]string{"ledger", "verify"}, "ledger verify: ok", false},
		{[]string{"payouts", "wire"}, "unknown subcommand", true},
	}
	for _, st := range steps {
		out, err := payoutsCLI(t, env, st.args...)
		if (err != nil) != st.wantErr || !strings.Contains(out, st.want) {
			t.Fatalf("paystream %s: err %v, output:\n%s\nwant it to contain %q (error: %t)", strings.Join(st.args, " "), err, out, st.want, st.wantErr)
		}
	}
	if n := fake.Transfers(); len(n) != 1 || n[0].Amount != 700 || n[0].Destination != acct {
		t.Fatalf("transfers = %+v", n)
	}
	// A reconcile that finds a difference exits 1.
	if _, err := bdb.NewRaw(`UPDATE payouts SET stripe_transfer_id = 'tr_elsewhere'`).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := payoutsCLI(t, env, "payouts", "reconcile", "--since", "1h")
	if !errors.Is(err, errDifferences) || !strings.Contains(out, "missing   1") || exitCode(err) != 1 {
		t.Fatalf("reconcile with a difference: %v\n%s", err, out)
	}
}
