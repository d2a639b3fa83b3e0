package purchase_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/model"
)

// final is what must not depend on the delivery order.
type final struct {
	purchases  int
	status     string
	dispute    string
	refund     int64
	refundedAt time.Time // zero when not fully refunded
	access     bool
}

func (e *env) final(w world) final {
	e.t.Helper()
	f := final{purchases: e.count("purchases", "stripe_checkout_session_id = ?", w.session)}
	if f.purchases == 1 {
		p := e.purchaseBySession(w.session)
		f.status, f.refund = p.Status, p.RefundAmountCents
		if p.RefundedAt != nil {
			f.refundedAt = p.RefundedAt.UTC()
		}
		if p.DisputeStatus != nil {
			f.dispute = *p.DisputeStatus
		}
	}
	ok, err := purchase.CheckAccess(context.Background(), e.db, w.customer, w.cat.content, e.clk.Now(), e.cfg.Access)
	if err != nil {
		e.t.Fatal(err)
	}
	f.access = ok
	// The materialised row agrees with the rule.
	a := e.access(w.customer, w.cat.content)
	if row := a != nil && a.RevokedAt == nil; row != ok {
		e.t.Errorf("content_access row active=%v but the access rule says %v", row, ok)
	}
	return f
}

// deliver hands the events to the handler in order, the way the runtime
// does: an event failing with fault.Pending goes to the back of the queue
// (NakWithDelay) and is delivered again; any other error fails the test.
func (e *env) deliver(evs []stripeevent.Event) {
	e.t.Helper()
	if e.batch {
		e.deliverBatches(evs)
		return
	}
	queue := append([]stripeevent.Event(nil), evs...)
	stalled := 0
	for len(queue) > 0 {
		ev := queue[0]
		queue = queue[1:]
		_, err := e.handle(ev)
		if err == nil {
			stalled = 0
			continue
		}
		if fault.CodeOf(err) != fault.Pending {
			e.t.Fatalf("Handle(%s %s): %v", ev.Type, ev.ID, err)
		}
		ev.Deliveries++
		queue = append(queue, ev)
		if stalled++; stalled > len(queue) {
			e.t.Fatalf("events stuck waiting: %v", err)
		}
	}
}

// deliverBatches is deliver with batching on: all waiting events go to
// HandleBatch together; the Pending ones come back as the next batch.
func (e *env) deliverBatches(evs []stripeevent.Event) {
	e.t.Helper()
	queue := append([]stripeevent.Event(nil), evs...)
	for len(queue) > 0 {
		res := e.h.HandleBatch(context.Background(), queue)
		var again []stripeevent.Event
		for i, r := range res {
			if r.Err == nil {
				continue
			}
			if fault.CodeOf(r.Err) != fault.Pending {
				e.t.Fatalf("HandleBatch: %s %s: %v", queue[i].Type, queue[i].ID, r.Err)
			}
			queue[i].Deliveries++
			again = append(again, queue[i])
		}
		if len(again) == len(queue) {
			e.t.Fatalf("events stuck waiting: %v", res[0].Err)
		}
		queue = again
	}
}

func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

// For every pair (and triple) of lifecycle events, every delivery order —
// duplicates included — ends in the same state.
func TestEveryDeliveryOrderEndsInTheSameState(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
		full := func(w world, id string, at time.Time) stripeevent.Event {
			return w.refund(t, id, at, stripefixture.Refund{ID: "re_b_" + w.session, Amount: 1999}, stripefixture.Refund{ID: "re_a_" + w.session, Amount: 1000})
		}
		partial := func(w world, id string, at time.Time) stripeevent.Event {
			return w.refund(t, id, at, stripefixture.Refund{ID: "re_a_" + w.session, Amount: 1000})
		}
		scenarios := []struct {
			name   string
			events func(t *testing.T, w world) []stripeevent.Event
			want   final
		}{
			{"completed and full refund, each duplicated", func(t *testing.T, w world) []stripeevent.Event {
				c := w.checkout(t, "checkout.session.completed", "evt_c_"+w.session, h(0), "")
				// The second report of the same full refund comes with a later time.
				return []stripeevent.Event{c, full(w, "evt_r_"+w.session, h(1)), c, full(w, "evt_r2_"+w.session, h(3))}
			}, final{1, model.PurchaseRefunded, "", 2999, h(1), false}},
			{"completed under two event ids and full refund", func(t *testing.T, w world) []stripeevent.Event {
				return []stripeevent.Event{w.checkout(t, "checkout.session.completed", "evt_c_"+w.session, h(0), ""),
					full(w, "evt_r_"+w.session, h(1)), w.checkout(t, "checkout.session.completed", "evt_c2_"+w.session, h(0), "")}
			}, final{1, model.PurchaseRefunded, "", 2999, h(1), false}},
			{"completed and dispute lost, close duplicated", func(t *testing.T, w world) []stripeevent.Event {
				lost := w.dispute(t, "charge.dispute.closed", "evt_dl_"+w.session, h(2), "lost")
				return []stripeevent.Event{w.checkout(t, "checkout.session.completed", "evt_c_"+w.session, h(0), ""),
					w.dispute(t, "charge.dispute.created", "evt_dc_"+w.session, h(1), "needs_response"), lost, lost}
			}, final{1, model.PurchaseDisputeLost, model.DisputeLost, 0, time.Time{}, false}},
			{"async succeeded and unpaid completed", func(t *testing.T, w world) []stripeevent.Event {
				s := w.checkout(t, "checkout.session.async_payment_succeeded", "evt_s_"+w.session, h(1), "")
				return []stripeevent.Event{w.checkout(t, "checkout.session.completed", "evt_c_"+w.session, h(0), "unpaid"), s, s}
			}, final{1, model.PurchaseCompleted, "", 0, time.Time{}, true}},
			{"refunds before the purchase exists", func(t *testing.T, w world) []stripeevent.Event {
				return []stripeevent.Event{partial(w, "evt_r1_"+w.session, h(1)), full(w, "evt_r2_"+w.session, h(2)),
					w.checkout(t, "checkout.session.completed", "evt_c_"+w.session, h(0), "")}
			}, final{1, model.PurchaseRefunded, "", 2999, h(2), false}},
			{"full refund and lost dispute", func(t *testing.T, w world) []stripeevent.Event {
				return []stripeevent.Event{w.checkout(t, "checkout.session.completed", "evt_c_"+w.session, h(0), ""),
					full(w, "evt_r_"+w.session, h(1)), w.dispute(t, "charge.dispute.closed", "evt_dl_"+w.session, h(2), "lost")}
			}, final{1, model.PurchaseDisputeLost, model.DisputeLost, 2999, h(1), false}},
			{"dispute created and won", func(t *testing.T, w world) []stripeevent.Event {
				return []stripeevent.Event{w.checkout(t, "checkout.session.completed", "evt_c_"+w.session, h(0), ""),
					w.dispute(t, "charge.dispute.created", "evt_dc_"+w.session, h(1), "needs_response"),
					w.dispute(t, "charge.dispute.closed", "evt_dw_"+w.session, h(2), "won")}
			}, final{1, model.PurchaseCompleted, model.DisputeWon, 0, time.Time{}, true}},
			{"partial refund and open dispute", func(t *testing.T, w world) []stripeevent.Event {
				return []stripeevent.Event{w.checkout(t, "checkout.session.completed", "evt_c_"+w.session, h(0), ""),
					partial(w, "evt_r_"+w.session, h(1)), w.dispute(t, "charge.dispute.created", "evt_dc_"+w.session, h(2), "needs_response")}
			}, final{1, model.PurchasePartiallyRefunded, model.DisputeOpen, 1000, time.Time{}, true}},
			{"async failed and unpaid completed", func(t *testing.T, w world) []stripeevent.Event {
				return []stripeevent.Event{w.checkout(t, "checkout.session.completed", "evt_c_"+w.session, h(0), "unpaid"),
					w.checkout(t, "checkout.session.async_payment_failed", "evt_f_"+w.session, h(1), "")}
			}, final{1, model.PurchaseFailed, "", 0, time.Time{}, false}},
			{"paid and expired", func(t *testing.T, w world) []stripeevent.Event {
				return []stripeevent.Event{w.checkout(t, "checkout.session.completed", "evt_c_"+w.session, h(0), ""),
					w.checkout(t, "checkout.session.expired", "evt_x_"+w.session, h(1), "")}
			}, final{1, model.PurchaseCompleted, "", 0, time.Time{}, true}},
			{"payment intent before and after its purchase", func(t *testing.T, w world) []stripeevent.Event {
				return []stripeevent.Event{w.checkout(t, "checkout.session.completed", "evt_c_"+w.session, h(0), ""),
					w.paymentIntent(t, "payment_intent.succeeded", "evt_pi_"+w.session, h(0))}
			}, final{1, model.PurchaseCompleted, "", 0, time.Time{}, true}},
		}
		for si, sc := range scenarios {
			for _, batch := range []bool{false, true} {
				name := sc.name
				if batch {
					name += " (batched)"
				}
				t.Run(name, func(t *testing.T) {
					e := newEnvOn(t, path, purchase.AccessPolicy{})
					e.batch = batch
					cat := e.seedContent()
					n := len(sc.events(t, newWorld(cat, "probe")))
					var firstLedger string
					for pi, perm := range permutations(n) {
						w := newWorld(cat, fmt.Sprintf("s%dp%d", si, pi))
						evs := sc.events(t, w)
						ordered := make([]stripeevent.Event, n)
						for i, j := range perm {
							ordered[i] = evs[j]
						}
						e.deliver(ordered)
						if got := e.final(w); got != sc.want {
							t.Errorf("order %v: final %+v, want %+v", perm, got, sc.want)
						}
						// The ledger too: what each party holds does not
						// depend on the order, nor, once no dispute is
						// open, in which account (the keys may: a partial
						// refund seen before the full one is a posting of
						// its own). While a dispute is open, a refund
						// delivered after its opening comes out of pending
						// and leaves the hold as it was (docs/ledger.md).
						_, sums := e.ledgerOf(e.purchaseBySession(w.session))
						state := sumsText(sums)
						if sc.want.dispute == model.DisputeOpen {
							state = sumsText(partyTotals(sums))
						}
						if pi == 0 {
							firstLedger = state
						} else if state != firstLedger {
							t.Errorf("order %v: ledger %s, first order %s", perm, state, firstLedger)
						}
					}
				})
			}
		}
	})
}

// One test per row of the transition table in docs/lifecycle.md, through the
// handler: the status, the access after, and the PURCHASES event.
func TestAccessFollowsEachTransition(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
		type step func(w world) stripeevent.Event
		var (
			paid step = func(w world) stripeevent.Event {
				return w.checkout(t, "checkout.session.completed", "evt_p_"+w.session, h(0), "")
			}
			unpaid step = func(w world) stripeevent.Event {
				return w.checkout(t, "checkout.session.completed", "evt_u_"+w.session, h(0), "unpaid")
			}
			succ step = func(w world) stripeevent.Event {
				return w.checkout(t, "checkout.session.async_payment_succeeded", "evt_s_"+w.session, h(1), "")
			}
			failed step = func(w world) stripeevent.Event {
				return w.checkout(t, "checkout.session.async_payment_failed", "evt_f_"+w.session, h(1), "")
			}
			expired step = func(w world) stripeevent.Event {
				return w.checkout(t, "checkout.session.expired", "evt_x_"+w.session, h(1), "")
			}
			part1 step = func(w world) stripeevent.Event {
				return w.refund(t, "evt_r1_"+w.session, h(2), stripefixture.Refund{ID: "re_1", Amount: 1000})
			}
			part2 step = func(w world) stripeevent.Event {
				return w.refund(t, "evt_r2_"+w.session, h(3), stripefixture.Refund{ID: "re_2", Amount: 500}, stripefixture.Refund{ID: "re_1", Amount: 1000})
			}
			fullR step = func(w world) stripeevent.Event {
				return w.refund(t, "evt_rf_"+w.session, h(4), stripefixture.Refund{ID: "re_f", Amount: 2999})
			}
			opened step = func(w world) stripeevent.Event {
				return w.dispute(t, "charge.dispute.created", "evt_do_"+w.session, h(5), "needs_response")
			}
			won step = func(w world) stripeevent.Event {
				return w.dispute(t, "charge.dispute.closed", "evt_dw_"+w.session, h(6), "won")
			}
			lost step = func(w world) stripeevent.Event {
				return w.dispute(t, "charge.dispute.closed", "evt_dl_"+w.session, h(6), "lost")
			}
		)
		tests := []struct {
			name    string
			setup   []step
			trigger step
			status  string // "" = no purchase
			access  bool
			subject string // "" = no PURCHASES event for the trigger
		}{
			{"none + unpaid → pending", nil, unpaid, model.PurchasePending, false, "purchases.pending"},
			{"none + paid → completed", nil, paid, model.PurchaseCompleted, true, "purchases.completed"},
			{"none + async failed → failed", nil, failed, model.PurchaseFailed, false, "purchases.failed"},
			{"none + expired → nothing", nil, expired, "", false, ""},
			{"pending + async succeeded → completed", []step{unpaid}, succ, model.PurchaseCompleted, true, "purchases.completed"},
			{"pending + async failed → failed", []step{unpaid}, failed, model.PurchaseFailed, false, "purchases.failed"},
			{"pending + expired → failed", []step{unpaid}, expired, model.PurchaseFailed, false, "purchases.failed"},
			{"completed + partial refund → partially_refunded", []step{paid}, part1, model.PurchasePartiallyRefunded, true, "purchases.refunded"},
			{"completed + full refund → refunded", []step{paid}, fullR, model.PurchaseRefunded, false, "purchases.refunded"},
			{"partially_refunded + larger partial → partially_refunded", []step{paid, part1}, part2, model.PurchasePartiallyRefunded, true, "purchases.refunded"},
			{"partially_refunded + full refund → refunded", []step{paid, part1}, fullR, model.PurchaseRefunded, false, "purchases.refunded"},
			{"completed + dispute opened → disputed, access kept", []step{paid}, opened, model.PurchaseCompleted, true, "purchases.disputed"},
			{"disputed + won → completed", []step{paid, opened}, won, model.PurchaseCompleted, true, "purchases.dispute_won"},
			{"disputed + lost → dispute_lost", []step{paid, opened}, lost, model.PurchaseDisputeLost, false, "purchases.dispute_lost"},
			{"partially_refunded + lost → dispute_lost", []step{paid, part1}, lost, model.PurchaseDisputeLost, false, "purchases.dispute_lost"},
			{"refunded + lost → dispute_lost", []step{paid, fullR}, lost, model.PurchaseDisputeLost, false, "purchases.dispute_lost"},
			{"refunded + paid again → unchanged", []step{paid, fullR}, succ, model.PurchaseRefunded, false, ""},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				w := newWorld(cat, fmt.Sprintf("row%d", i))
				for _, s := range tt.setup {
					e.mustHandle(s(w), handling.Applied)
				}
				var before int
				if len(tt.setup) > 0 {
					before = len(e.outboxRows(e.purchaseBySession(w.session).ID))
				}
				if _, err := e.handle(tt.trigger(w)); err != nil {
					t.Fatal(err)
				}
				f := e.final(w)
				if f.status != tt.status || f.access != tt.access {
					t.Errorf("status %q access %v, want %q %v", f.status, f.access, tt.status, tt.access)
				}
				if tt.status == "" {
					return
				}
				rows := e.outboxRows(e.purchaseBySession(w.session).ID)
				switch {
				case tt.subject == "" && len(rows) != before:
					t.Errorf("unexpected PURCHASES events %v", subjects(rows[before:]))
				case tt.subject != "" && (len(rows) != before+1 || rows[len(rows)-1].Subject != tt.subject):
					t.Errorf("PURCHASES events %v, want one more %s", subjects(rows), tt.subject)
				}
			})
		}
	})
}
