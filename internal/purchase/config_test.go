package purchase_test

import (
	"testing"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/purchase"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		env    map[string]string
		revoke bool
		bad    bool
	}{
		{map[string]string{}, false, false},
		{map[string]string{"PURCHASE_REVOKE_ON_PARTIAL_REFUND": "true"}, true, false},
		{map[string]string{"PURCHASE_REVOKE_ON_PARTIAL_REFUND": "maybe"}, false, true},
	}
	for _, tt := range tests {
		p := config.NewParser(config.MapEnv(tt.env))
		c := purchase.ParseConfig(p)
		if (p.Err() != nil) != tt.bad || c.Access.RevokeOnPartialRefund != tt.revoke {
			t.Errorf("env %v: config %+v err %v", tt.env, c, p.Err())
		}
	}
}

func TestHandledTypes(t *testing.T) {
	want := []string{"charge.dispute.closed", "charge.dispute.created", "charge.refunded",
		"checkout.session.async_payment_failed", "checkout.session.async_payment_succeeded",
		"checkout.session.completed", "checkout.session.expired",
		"payment_intent.payment_failed", "payment_intent.succeeded"}
	got := purchase.HandledTypes()
	if len(got) != len(want) {
		t.Fatalf("HandledTypes = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("HandledTypes = %v, want %v", got, want)
		}
	}
}
