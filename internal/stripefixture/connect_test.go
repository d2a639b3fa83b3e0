package stripefixture_test

import (
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/paystream/paystream/internal/stripefixture"
)

// The Connect builders produce events stripe-go decodes and verifies: the
// two account events carry the connected account at the top level (as
// Stripe sends events that happen on a connected account), a transfer's
// reversal does not (it is the platform's event).
func TestConnectEventsDecodeWithStripeGo(t *testing.T) {
	meta := stripefixture.Meta{EventID: "evt_connect_1", Created: time.Now()}
	tests := []struct {
		name    string
		build   func() ([]byte, error)
		typ     string
		account string
		check   func(t *testing.T, ev stripe.Event)
	}{
		{"account updated", func() ([]byte, error) {
			return stripefixture.AccountUpdatedEvent(meta, stripefixture.Account{ID: "acct_1A", ChargesEnabled: true,
				PayoutsEnabled: false, CurrentlyDue: []string{"external_account"}, PastDue: []string{"tos_acceptance.date"},
				DisabledReason: "requirements.past_due", PayeeKind: "creator", PayeeID: "alice"})
		}, "account.updated", "acct_1A", func(t *testing.T, ev stripe.Event) {
			var a stripe.Account
			mustUnmarshal(t, ev.Data.Raw, &a)
			if a.ID != "acct_1A" || !a.ChargesEnabled || a.PayoutsEnabled || a.Type != stripe.AccountTypeExpress ||
				a.Requirements == nil || len(a.Requirements.CurrentlyDue) != 1 || len(a.Requirements.PastDue) != 1 ||
				a.Requirements.DisabledReason != "requirements.past_due" ||
				a.Metadata[stripefixture.MetadataPayeeKind] != "creator" || a.Metadata[stripefixture.MetadataPayeeID] != "alice" {
				t.Errorf("account = %+v (requirements %+v)", a, a.Requirements)
			}
		}},
		{"account updated without payee metadata", func() ([]byte, error) {
			return stripefixture.AccountUpdatedEvent(meta, stripefixture.Account{PayoutsEnabled: true})
		}, "account.updated", "", func(t *testing.T, ev stripe.Event) {
			var a stripe.Account
			mustUnmarshal(t, ev.Data.Raw, &a)
			if ev.Account != a.ID || !a.PayoutsEnabled || len(a.Metadata) != 0 || a.Requirements.DisabledReason != "" {
				t.Errorf("account %+v of event account %q", a, ev.Account)
			}
		}},
		{"deauthorized", func() ([]byte, error) {
			return stripefixture.DeauthorizedEvent(meta, "acct_1B")
		}, "account.application.deauthorized", "acct_1B", func(t *testing.T, ev stripe.Event) {
			var a stripe.Application
			mustUnmarshal(t, ev.Data.Raw, &a)
			if a.Object != "application" || a.ID == "" {
				t.Errorf("application = %+v", a)
			}
		}},
		{"transfer reversed twice", func() ([]byte, error) {
			return stripefixture.TransferReversedEvent(meta, stripefixture.Transfer{ID: "tr_1", Amount: 5000, Destination: "acct_1A",
				TransferGroup: "payout:x", Reversals: []stripefixture.TransferReversal{{ID: "trr_1", Amount: 1000}, {ID: "trr_2", Amount: 500}}})
		}, "transfer.reversed", "", func(t *testing.T, ev stripe.Event) {
			var tr stripe.Transfer
			mustUnmarshal(t, ev.Data.Raw, &tr)
			if tr.ID != "tr_1" || tr.AmountReversed != 1500 || tr.Reversed || tr.TransferGroup != "payout:x" ||
				tr.Destination.ID != "acct_1A" || len(tr.Reversals.Data) != 2 || tr.Reversals.Data[0].ID != "trr_2" ||
				tr.Reversals.Data[0].Created <= tr.Reversals.Data[1].Created {
				t.Errorf("transfer = %+v, reversals newest first %+v", tr, tr.Reversals.Data)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := tt.build()
			if err != nil {
				t.Fatal(err)
			}
			secret := stripefixture.NewSecret()
			ev, err := webhook.ConstructEventWithOptions(body, stripefixture.Sign(body, secret, time.Now()), secret,
				webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
			if err != nil {
				t.Fatalf("stripe-go rejects the fixture: %v", err)
			}
			if ev.ID != "evt_connect_1" || string(ev.Type) != tt.typ {
				t.Errorf("event = %s %s", ev.ID, ev.Type)
			}
			if tt.account != "" && ev.Account != tt.account {
				t.Errorf("top-level account = %q, want %q", ev.Account, tt.account)
			}
			if tt.typ == "transfer.reversed" && ev.Account != "" {
				t.Errorf("a platform event carries account %q", ev.Account)
			}
			tt.check(t, ev)
		})
	}
	if _, err := stripefixture.DeauthorizedEvent(meta, ""); err == nil {
		t.Error("a deauthorization without an account was built")
	}
}
