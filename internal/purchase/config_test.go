package purchase_test

import (
	"testing"

	"github.com/paystream/paystream/internal/purchase"
)

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
