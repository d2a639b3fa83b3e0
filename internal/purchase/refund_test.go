package purchase_test

import (
	"errors"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/model"
)

func TestPartialThenFullRefund(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		w := newWorld(e.seedContent(), "pf")
		e.mustHandle(w.checkout(t, "checkout.session.completed", "evt_c", t0, ""), handling.Applied)

		r1 := stripefixture.Refund{ID: "re_1", Amount: 1000, Reason: "requested_by_customer"}
		partial := w.refund(t, "evt_r1", t0.Add(time.Hour), r1)
		e.mustHandle(partial, handling.Applied)
		p := e.purchaseBySession(w.session)
		if p.Status != model.PurchasePartiallyRefunded || p.RefundAmountCents != 1000 || p.RefundedAt != nil ||
			p.StripeRefundID == nil || *p.StripeRefundID != "re_1" || p.StripeChargeID == nil || *p.StripeChargeID != w.charge {
			t.Fatalf("after partial refund: %+v", p)
		}
		if a := e.access(w.customer, w.cat.content); a == nil || a.RevokedAt != nil {
			t.Errorf("partial refund revoked access under the default policy: %+v", a)
		}
		// 1000 of 2999 (split 300 / 0 / 2699): the platform gives back
		// ceil(300 × 1000 / 2999) = 101, the creator the other 899.
		e.wantLedger(p, []string{"purchase:P", "refund:P:1000"},
			map[string]int64{"platform/stripe_clearing": -1999, "platform/pending": 199, "creator/pending": 1800})
		e.mustHandle(partial, handling.Duplicate)                                       // redelivery
		e.mustHandle(w.refund(t, "evt_r1b", t0.Add(time.Hour), r1), handling.Duplicate) // same change, new event id

		full := w.refund(t, "evt_r2", t0.Add(2*time.Hour), stripefixture.Refund{ID: "re_2", Amount: 1999, Reason: "duplicate"}, r1)
		e.mustHandle(full, handling.Applied)
		p = e.purchaseBySession(w.session)
		if p.Status != model.PurchaseRefunded || p.RefundAmountCents != 2999 || p.RefundedAt == nil ||
			!p.RefundedAt.Equal(t0.Add(2*time.Hour)) || *p.StripeRefundID != "re_2" || *p.RefundReason != "duplicate" {
			t.Fatalf("after full refund: %+v", p)
		}
		if a := e.access(w.customer, w.cat.content); a == nil || a.RevokedAt == nil || a.RevokeReason == nil || *a.RevokeReason != "full_refund" {
			t.Errorf("full refund kept access: %+v", a)
		}
		// The rest: every party has given back its whole share.
		e.wantLedger(p, []string{"purchase:P", "refund:P:1000", "refund:P:2999"}, map[string]int64{})
		// The older partial event delivered late changes nothing.
		e.mustHandle(w.refund(t, "evt_r1c", t0.Add(time.Hour), r1), handling.Duplicate)
		// Neither does a late completed.
		e.mustHandle(w.checkout(t, "checkout.session.completed", "evt_c2", t0, ""), handling.Duplicate)

		rows := e.outboxRows(p.ID)
		if got := subjects(rows); !equalStrings(got, []string{"purchases.completed", "purchases.refunded", "purchases.refunded"}) {
			t.Errorf("outbox = %v", got)
		}
		if got := metric(t, e.reg, "paystream_refunded_minor_units_total", map[string]string{"currency": "usd"}); got != 2999 {
			t.Errorf("refunded_minor_units_total = %v, want 2999 (never double counted)", got)
		}
		if got := metric(t, e.reg, "paystream_ledger_postings_total", map[string]string{"cause": "refund"}); got != 2 {
			t.Errorf("ledger_postings_total{refund} = %v, want 2", got)
		}
		for status, want := range map[string]float64{"partially_refunded": 1, "refunded": 1} {
			if got := metric(t, e.reg, "paystream_purchases_total", map[string]string{"currency": "usd", "status": status}); got != want {
				t.Errorf("purchases_total{%s} = %v", status, got)
			}
		}
		if got := metric(t, e.reg, "paystream_content_access_changes_total", map[string]string{"change": "revoked"}); got != 1 {
			t.Errorf("access revoked = %v", got)
		}
	})
}

func TestPartialRefundRevokesUnderPolicy(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{RevokeOnPartialRefund: true})
		w := newWorld(e.seedContent(), "pol")
		e.mustHandle(w.checkout(t, "checkout.session.completed", "evt_c", t0, ""), handling.Applied)
		e.mustHandle(w.refund(t, "evt_r", t0.Add(time.Hour), stripefixture.Refund{Amount: 1}), handling.Applied)
		if a := e.access(w.customer, w.cat.content); a == nil || a.RevokedAt == nil {
			t.Errorf("access = %+v, want revoked", a)
		}
	})
}

// A refund that overtakes its purchase is retried (fault.Pending) without
// writing anything, and applies once the purchase exists.
func TestRefundBeforePurchaseIsPendingThenApplies(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		w := newWorld(e.seedContent(), "early")
		refund := w.refund(t, "evt_r", t0.Add(time.Hour), stripefixture.Refund{Amount: 2999})
		_, err := e.handle(refund)
		var fe *fault.Error
		if !errors.As(err, &fe) || fe.Code != fault.Pending || fe.Reason != "purchase_not_found" || fault.ActionOf(err) != fault.Retry {
			t.Fatalf("early refund = %v, want fault.Pending purchase_not_found", err)
		}
		if n := e.count("stripe_events", ""); n != 0 {
			t.Errorf("early refund wrote %d stripe_events rows", n)
		}
		// Pending purchase: still too early.
		e.mustHandle(w.checkout(t, "checkout.session.completed", "evt_c", t0, "unpaid"), handling.Applied)
		if _, err := e.handle(refund); fault.ReasonOf(err) != "purchase_not_paid" || fault.CodeOf(err) != fault.Pending {
			t.Fatalf("refund of pending purchase = %v", err)
		}
		e.mustHandle(w.checkout(t, "checkout.session.async_payment_succeeded", "evt_s", t0.Add(time.Minute), ""), handling.Applied)
		refund.Deliveries = 3
		e.mustHandle(refund, handling.Applied)
		p := e.purchaseBySession(w.session)
		if p.Status != model.PurchaseRefunded {
			t.Errorf("status = %s", p.Status)
		}
		e.wantLedger(p, []string{"purchase:P", "refund:P:2999"}, map[string]int64{})
	})
}

func TestRefundRejectsBadInput(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		w := newWorld(e.seedContent(), "bad")
		e.mustHandle(w.checkout(t, "checkout.session.completed", "evt_c", t0, ""), handling.Applied)
		b, err := stripefixture.ChargeRefundedEvent(stripefixture.Meta{EventID: "evt_eur", Created: t0},
			stripefixture.Charge{ChargeID: w.charge, PaymentIntentID: w.pi, Amount: 2999, Currency: "eur", Refunds: []stripefixture.Refund{{Amount: 10}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.handle(toEvent(t, b)); fault.ReasonOf(err) != "currency_mismatch" || fault.CodeOf(err) != fault.Invalid {
			t.Errorf("refund in another currency = %v", err)
		}
		b, _ = stripefixture.ChargeRefundedEvent(stripefixture.Meta{EventID: "evt_nolink", Created: t0}, stripefixture.Charge{ChargeID: "", Amount: 1})
		ev := toEvent(t, b)
		ev.Payload = []byte(`{"id":"evt_nolink","type":"charge.refunded","created":1700000000,"data":{"object":{"id":"ch_x","object":"charge","currency":"usd","amount_refunded":1}}}`)
		if _, err := e.handle(ev); fault.CodeOf(err) != fault.Pending {
			// ch_x names a charge no purchase has: it may still be linked later.
			t.Errorf("refund of unknown charge = %v, want pending", err)
		}
	})
}
