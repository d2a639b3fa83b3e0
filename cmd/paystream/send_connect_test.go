package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// `paystream send` builds the payout family's events, signed with the
// Connect endpoint's secret for the account events and the default
// endpoint's for transfer.reversed; --payee and --payout read the account
// and the transfer from the database.
func TestSendConnectEvents(t *testing.T) {
	const (
		connect  = "whsec_test_connect"
		platform = "whsec_test_platform"
	)
	bdb, dsn := testenv.DB(t)
	acct, tr := "acct_1SendTest", "tr_1SendTest"
	payoutID := uuid.New()
	now := time.Now()
	for _, m := range []any{
		&model.Payee{Kind: model.PayeeCreator, ID: "cr_send", StripeAccountID: &acct, PayoutsEnabled: true, RequirementsDue: model.JSON("[]")},
		&model.Payout{ID: payoutID, PayeeKind: model.PayeeCreator, PayeeID: "cr_send", Currency: "usd", AmountCents: 5000,
			AmountReversedCents: 1000, Status: model.PayoutPaid, StripeTransferID: &tr, TransferGroup: "payout:" + payoutID.String(),
			Attempts: 1, FirstAttemptAt: &now, PaidAt: &now},
	} {
		if _, err := bdb.NewInsert().Model(m).Exec(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	env := config.MapEnv(map[string]string{"STRIPE_WEBHOOK_SECRET": platform, connectSecretVar: connect, "DATABASE_URL": dsn})
	tests := []struct {
		name   string
		args   []string
		secret string
		check  func(t *testing.T, ev stripe.Event)
	}{
		{"account updated", []string{"account.updated", "--account", "acct_1X", "--payouts-enabled", "--charges-enabled",
			"--due", "external_account, tos_acceptance.date", "--age", "1h"}, connect, func(t *testing.T, ev stripe.Event) {
			if ev.Account != "acct_1X" || ev.GetObjectValue("id") != "acct_1X" || ev.GetObjectValue("payouts_enabled") != "true" ||
				ev.GetObjectValue("charges_enabled") != "true" || time.Since(time.Unix(ev.Created, 0)) < 59*time.Minute {
				t.Errorf("event %s on %s: %v", ev.ID, ev.Account, ev.Data.Object)
			}
			due, _ := ev.Data.Object["requirements"].(map[string]any)["currently_due"].([]any)
			if len(due) != 2 || due[1] != "tos_acceptance.date" {
				t.Errorf("currently_due %v", due)
			}
		}},
		{"account updated of a payee", []string{"account.updated", "--payee", "creator:cr_send"}, connect, func(t *testing.T, ev stripe.Event) {
			if ev.Account != acct || ev.GetObjectValue("metadata", "paystream_payee_id") != "cr_send" || ev.GetObjectValue("payouts_enabled") != "false" {
				t.Errorf("event on %s: %v", ev.Account, ev.Data.Object)
			}
		}},
		{"deauthorized", []string{"account.application.deauthorized", "--payee", "creator:cr_send"}, connect, func(t *testing.T, ev stripe.Event) {
			if ev.Account != acct || ev.GetObjectValue("object") != "application" {
				t.Errorf("event on %s: %v", ev.Account, ev.Data.Object)
			}
		}},
		{"transfer reversed of a payout", []string{"transfer.reversed", "--payout", payoutID.String(), "--reverse", "500"}, platform,
			func(t *testing.T, ev stripe.Event) {
				if ev.Account != "" || ev.GetObjectValue("id") != tr || ev.GetObjectValue("amount_reversed") != "1500" ||
					ev.GetObjectValue("transfer_group") != "payout:"+payoutID.String() || ev.GetObjectValue("destination") != acct {
					t.Errorf("event: %v", ev.Data.Object)
				}
			}},
		{"transfer reversed in full", []string{"transfer.reversed", "--transfer", "tr_9", "--transfer-amount", "700"}, platform,
			func(t *testing.T, ev stripe.Event) {
				if ev.GetObjectValue("amount_reversed") != "700" || ev.GetObjectValue("reversed") != "true" {
					t.Errorf("event: %v", ev.Data.Object)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{secret: tt.secret}
			srv := httptest.NewServer(rec)
			t.Cleanup(srv.Close)
			var out, errOut bytes.Buffer
			err := run(context.Background(), append(append([]string{"send"}, tt.args...), "--url", srv.URL), env, &out, &errOut)
			if err != nil {
				t.Fatalf("send: %v\n%s%s", err, out.String(), errOut.String())
			}
			if len(rec.events) != 1 || !strings.Contains(out.String(), "-> 200") {
				t.Fatalf("%d events received; output %q", len(rec.events), out.String())
			}
			tt.check(t, rec.events[0])
		})
	}
	for name, args := range map[string][]string{
		"no account":              {"account.updated"},
		"payee without account":   {"account.application.deauthorized", "--payee", "creator:nobody"},
		"reversing more than all": {"transfer.reversed", "--payout", payoutID.String(), "--reverse", "4001"},
		"no transfer":             {"transfer.reversed"},
	} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), append(append([]string{"send"}, args...), "--url", "http://127.0.0.1:1"), env, &out, &errOut); err == nil {
			t.Errorf("%s: sent", name)
		}
	}
}
