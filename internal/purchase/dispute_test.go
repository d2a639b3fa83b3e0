package purchase_test

import (
	"testing"
	"time"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/model"
)

func TestDisputeWonAfterCreated(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		w := newWorld(e.seedContent(), "won")
		e.mustHandle(w.checkout(t, "checkout.session.completed", "evt_c", t0, ""), handling.Applied)
		created := w.dispute(t, "charge.dispute.created", "evt_d1", t0.Add(time.Hour), "needs_response")
		e.mustHandle(created, handling.Applied)
		p := e.purchaseBySession(w.session)
		if p.Status != model.PurchaseCompleted || p.DisputeStatus == nil || *p.DisputeStatus != model.DisputeOpen ||
			p.DisputedAt == nil || p.StripeDisputeID == nil || p.StripeChargeID == nil {
			t.Fatalf("after created: %+v", p)
		}
		if a := e.access(w.customer, w.cat.content); a == nil || a.RevokedAt != nil {
			t.Errorf("open dispute revoked access: %+v", a)
		}
		// The disputed amount (all of it) is held.
		e.wantLedger(p, []string{"purchase:P", "dispute:P:opened"},
			map[string]int64{"platform/stripe_clearing": -2999, "platform/disputed": 300, "creator/disputed": 2699})
		e.mustHandle(created, handling.Duplicate)
		// charge.dispute.updated is not tracked.
		e.mustHandle(w.dispute(t, "charge.dispute.updated", "evt_du", t0.Add(90*time.Minute), "under_review"), handling.Ignored)

		e.mustHandle(w.dispute(t, "charge.dispute.closed", "evt_d2", t0.Add(2*time.Hour), "won"), handling.Applied)
		p = e.purchaseBySession(w.session)
		if p.Status != model.PurchaseCompleted || *p.DisputeStatus != model.DisputeWon || p.DisputeClosedAt == nil {
			t.Fatalf("after won: %+v", p)
		}
		if a := e.access(w.customer, w.cat.content); a == nil || a.RevokedAt != nil {
			t.Errorf("won dispute revoked access: %+v", a)
		}
		e.wantLedger(p, []string{"purchase:P", "dispute:P:opened", "dispute:P:closed"},
			map[string]int64{"platform/stripe_clearing": -2999, "platform/pending": 300, "creator/pending": 2699})
		// A late created after the close changes nothing.
		e.mustHandle(w.dispute(t, "charge.dispute.created", "evt_d3", t0.Add(time.Hour), "needs_response"), handling.Duplicate)
		if got := subjects(e.outboxRows(p.ID)); !equalStrings(got, []string{"purchases.completed", "purchases.disputed", "purchases.dispute_won"}) {
			t.Errorf("outbox = %v", got)
		}
		for status, want := range map[string]float64{"open": 1, "won": 1} {
			if got := metric(t, e.reg, "paystream_disputes_total", map[string]string{"status": status}); got != want {
				t.Errorf("disputes_total{%s} = %v", status, got)
			}
		}
	})
}

func TestDisputeLostRevokesAccess(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		w := newWorld(e.seedContent(), "lost")
		e.mustHandle(w.checkout(t, "checkout.session.completed", "evt_c", t0, ""), handling.Applied)
		e.mustHandle(w.dispute(t, "charge.dispute.created", "evt_d1", t0.Add(time.Hour), "needs_response"), handling.Applied)
		e.mustHandle(w.dispute(t, "charge.dispute.closed", "evt_d2", t0.Add(2*time.Hour), "lost"), handling.Applied)
		p := e.purchaseBySession(w.session)
		if p.Status != model.PurchaseDisputeLost || *p.DisputeStatus != model.DisputeLost {
			t.Fatalf("after lost: %+v", p)
		}
		if a := e.access(w.customer, w.cat.content); a == nil || a.RevokedAt == nil || *a.RevokeReason != "dispute_lost" {
			t.Errorf("access after lost = %+v", a)
		}
		// Lost: the hold returns and every party gives its share back.
		e.wantLedger(p, []string{"purchase:P", "dispute:P:opened", "dispute:P:closed"}, map[string]int64{})
		for cause, want := range map[string]float64{"purchase": 1, "dispute_opened": 1, "dispute_lost": 1} {
			if got := metric(t, e.reg, "paystream_ledger_postings_total", map[string]string{"cause": cause}); got != want {
				t.Errorf("ledger_postings_total{%s} = %v, want %v", cause, got, want)
			}
		}
		if got := subjects(e.outboxRows(p.ID)); !equalStrings(got, []string{"purchases.completed", "purchases.disputed", "purchases.dispute_lost"}) {
			t.Errorf("outbox = %v", got)
		}
		if got := metric(t, e.reg, "paystream_purchases_total", map[string]string{"currency": "usd", "status": "dispute_lost"}); got != 1 {
			t.Errorf("purchases_total{dispute_lost} = %v", got)
		}
		// Won after lost (a second close) changes nothing.
		e.mustHandle(w.dispute(t, "charge.dispute.closed", "evt_d3", t0.Add(3*time.Hour), "won"), handling.Duplicate)
	})
}

func TestDisputeBeforePurchaseIsPending(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		w := newWorld(e.seedContent(), "early")
		_, err := e.handle(w.dispute(t, "charge.dispute.created", "evt_d", t0, "needs_response"))
		if fault.CodeOf(err) != fault.Pending || fault.ReasonOf(err) != "purchase_not_found" {
			t.Fatalf("early dispute = %v", err)
		}
		// A close with a status that means nothing for the purchase is recorded.
		e.mustHandle(w.checkout(t, "checkout.session.completed", "evt_c", t0, ""), handling.Applied)
		e.mustHandle(w.dispute(t, "charge.dispute.closed", "evt_odd", t0, "under_review"), handling.Applied)
		if n := e.count("stripe_events", "event_id = 'evt_odd' AND outcome = 'recorded' AND purchase_id IS NOT NULL"); n != 1 {
			t.Error("odd close not recorded")
		}
	})
}
