package purchase_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

// A paid checkout handled five times ends as exactly one purchases.completed
// message on PURCHASES, received through the typed consumer API.
func TestPaidCheckoutReachesPurchasesStreamOnce(t *testing.T) {
	e := newEnv(t, purchase.AccessPolicy{})
	cat := e.seedContent()
	n := testenv.StartNATS(t)
	js := n.JetStream(t)
	relay, err := outbox.NewRelay(e.db, js, outbox.RelayConfig{PollInterval: 10 * time.Millisecond},
		outbox.NewMetrics(prometheus.NewRegistry()), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	got := make(chan streams.PurchaseEvent, 10)
	cc, err := streams.SubscribePurchases(ctx, js, "e2e", func(_ context.Context, ev streams.PurchaseEvent) error {
		got <- ev
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)

	ev := checkout(t, "checkout.session.completed", "evt_e2e", t0, cat, "cs_e2e", 2999, nil)
	e.mustHandle(ev, handling.Applied)
	for i := 0; i < 4; i++ {
		e.mustHandle(ev, handling.Duplicate)
	}
	select {
	case pe := <-got:
		if pe.Type != "com.paystream.purchase.completed.v1" || pe.Data.Stripe.CheckoutSessionID != "cs_e2e" ||
			pe.Data.Split.PlatformFeeCents != 300 || pe.Data.Split.CreatorPayoutCents != 2699 {
			t.Errorf("event = %+v", pe)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no purchases.completed message")
	}
	select {
	case pe := <-got:
		t.Errorf("second message %+v", pe)
	case <-time.After(500 * time.Millisecond):
	}
}
