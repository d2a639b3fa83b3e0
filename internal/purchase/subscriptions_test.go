package purchase_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/eventtx"
	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/model"
)

// fakeSubscriptions records what the purchase routes hand over; an invoice
// charge is one of invoiceCharges.
type fakeSubscriptions struct {
	mu             sync.Mutex
	checkouts      []string
	charges        []string
	invoiceCharges map[string]bool
}

func (f *fakeSubscriptions) Checkout(_ context.Context, _ bun.Tx, ev eventtx.Event, rec *eventtx.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checkouts = append(f.checkouts, ev.ID)
	rec.Applied()
	return nil
}

func (f *fakeSubscriptions) Charge(_ context.Context, _ bun.Tx, ev eventtx.Event, rec *eventtx.Record) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.charges = append(f.charges, ev.ID)
	if !f.invoiceCharges[ev.ID] {
		return false, nil
	}
	rec.Applied()
	return true, nil
}

var _ purchase.Subscriptions = (*fakeSubscriptions)(nil)

// The purchase routes of the shared types hand the subscription family a
// session in subscription mode (never a purchase) and a refund or dispute
// whose charge pays no purchase; a purchase's own events never reach it,
// and a charge neither family has waits (purchase_not_found).
func TestSharedTypesHandOverToSubscriptions(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		subs := &fakeSubscriptions{invoiceCharges: map[string]bool{"evt_inv_refund": true}}
		e.cfg.Subscriptions = subs
		e.h, e.reg = e.newHandler(e.db)
		cat := e.seedContent()

		// A purchase, its refund: the purchase family's alone.
		e.mustHandle(checkout(t, purchase.TypeCheckoutCompleted, "evt_buy", t0, cat, "cs_buy", 2999, nil), handling.Applied)
		refund, err := stripefixture.ChargeRefundedEvent(stripefixture.Meta{EventID: "evt_p_refund", Created: t0.Add(time.Minute)},
			stripefixture.Charge{ChargeID: "ch_buy", PaymentIntentID: "pi_cs_buy", Amount: 2999, Refunds: []stripefixture.Refund{{Amount: 2999}}})
		if err != nil {
			t.Fatal(err)
		}
		e.mustHandle(toEvent(t, refund), handling.Applied)

		// A session in subscription mode: handed over, no purchase.
		body, err := stripefixture.SubscriptionCheckoutEvent(stripefixture.Meta{EventID: "evt_sub", Created: t0},
			stripefixture.SubscriptionCheckout{SessionID: "cs_sub", SubscriptionID: "sub_1", Amount: 999,
				Metadata: stripefixture.SubscriptionMetadata("user_1", "00000000-0000-4000-8000-0000000005a1", cat.org.String())})
		if err != nil {
			t.Fatal(err)
		}
		e.mustHandle(toEvent(t, body), handling.Applied)
		if n := e.count("purchases", "stripe_checkout_session_id = 'cs_sub'"); n != 0 {
			t.Fatalf("a subscription session made %d purchases", n)
		}

		// An invoice's refund: the purchase route finds no purchase, the
		// subscription family takes it.
		inv, err := stripefixture.ChargeRefundedEvent(stripefixture.Meta{EventID: "evt_inv_refund", Created: t0},
			stripefixture.Charge{ChargeID: "ch_inv", PaymentIntentID: "pi_inv", Amount: 999, Refunds: []stripefixture.Refund{{Amount: 999}}})
		if err != nil {
			t.Fatal(err)
		}
		e.mustHandle(toEvent(t, inv), handling.Applied)
		// A refund of a charge neither family has waits.
		none, err := stripefixture.ChargeRefundedEvent(stripefixture.Meta{EventID: "evt_none", Created: t0},
			stripefixture.Charge{ChargeID: "ch_none", PaymentIntentID: "pi_none", Amount: 999, Refunds: []stripefixture.Refund{{Amount: 999}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.handle(toEvent(t, none)); fault.CodeOf(err) != fault.Pending || fault.ReasonOf(err) != "purchase_not_found" {
			t.Fatalf("a refund nobody has: %v; want pending purchase_not_found", err)
		}

		subs.mu.Lock()
		defer subs.mu.Unlock()
		if len(subs.checkouts) != 1 || subs.checkouts[0] != "evt_sub" {
			t.Errorf("checkouts handed over: %v, want only evt_sub", subs.checkouts)
		}
		if len(subs.charges) != 2 || subs.charges[0] != "evt_inv_refund" || subs.charges[1] != "evt_none" {
			t.Errorf("charges handed over: %v, want evt_inv_refund and evt_none (never a purchase's)", subs.charges)
		}
		var p model.Purchase
		if err := e.db.NewSelect().Model(&p).Where("stripe_checkout_session_id = 'cs_buy'").Scan(context.Background()); err != nil ||
			p.Status != model.PurchaseRefunded {
			t.Errorf("the purchase: %+v, %v; want refunded", p, err)
		}
	})
}
