package subscription

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/model"
)

// Two events of one second, in either order, end in what Stripe answers:
// the rule never guesses which change came last.
func TestSameSecondTieFetchesAndTheTruthWins(t *testing.T) {
	bdb := catalogDB(t)
	x := t0.Add(5 * day)
	for _, shape := range shapes {
		a := subEvent(t, shape, TypeSubscriptionUpdated, "evt_a", x, p1, status(model.SubscriptionActive), cancelAtPeriodEnd(true))
		b := subEvent(t, shape, TypeSubscriptionUpdated, "evt_b", x, p1, status(model.SubscriptionActive), cancelAtPeriodEnd(false))
		for _, order := range [][]Event{{a, b}, {b, a}} {
			t.Run(shape+"/"+order[0].ID+"_first", func(t *testing.T) {
				stripe := newFakeStripe()
				stripe.set(fixSub, subscriptionBody(t, shape, p1, status(model.SubscriptionActive), cancelAtPeriodEnd(true)))
				s := mustStore(t, stripe)
				inTx(t, bdb, func(tx bun.Tx) {
					if out := handle(t, s, tx, order[0]); out.Decision != Applied || out.Refetched {
						t.Fatalf("first = %+v", out)
					}
					out := handle(t, s, tx, order[1])
					if out.Decision != Refetch || !out.Refetched || stripe.callCount() != 1 {
						t.Fatalf("tie = %v refetched=%v, %d fetches", out.Decision, out.Refetched, stripe.callCount())
					}
					got := loadSub(t, tx, fixSub)
					if !got.CancelAtPeriodEnd || !got.AccessUntil.Equal(p1.end) {
						t.Errorf("after the tie: cancel_at_period_end=%v access_until=%v, want Stripe's true, %v",
							got.CancelAtPeriodEnd, got.AccessUntil, p1.end)
					}
					// The tie's own redelivery is a duplicate, not another fetch.
					if out := handle(t, s, tx, order[1]); out.Result != ResultDuplicate || stripe.callCount() != 1 {
						t.Errorf("redelivery = %+v after %d fetches", out, stripe.callCount())
					}
				})
			})
		}
	}
}

// Stripe unreachable when the rule needs it: a transient error (the
// processor retries with backoff), and nothing is written, least of all the
// payload that could not be ordered.
func TestStripeUnreachableNeverAppliesAStalePayload(t *testing.T) {
	bdb := catalogDB(t)
	ctx := context.Background()
	x := t0.Add(5 * day)
	stripe := newFakeStripe()
	s := mustStore(t, stripe)
	a := subEvent(t, shapeNew, TypeSubscriptionUpdated, "evt_a", x, p1, status(model.SubscriptionActive))
	b := subEvent(t, shapeNew, TypeSubscriptionUpdated, "evt_b", x, p1, status(model.SubscriptionCanceled))
	paid := invoiceEvt(t, shapeNew, TypeInvoicePaid, "evt_paid", x, "in_1", p1, 1000, x, "1")
	retried := func(t *testing.T, err error) {
		t.Helper()
		if fault.CodeOf(err) != fault.Unavailable || fault.ActionOf(err) != fault.Retry || fault.ReasonOf(err) != "stripe_unavailable" {
			t.Fatalf("error = %v (%s), want a transient stripe_unavailable", err, fault.CodeOf(err))
		}
	}
	t.Run("tie", func(t *testing.T) {
		inTx(t, bdb, func(tx bun.Tx) {
			handle(t, s, tx, a)
			before := loadSub(t, tx, fixSub)
			stripe.fail(errStripeDown)
			defer stripe.fail(nil)
			_, err := s.Handle(ctx, tx, b)
			retried(t, err)
			if after := loadSub(t, tx, fixSub); after.Status != before.Status || after.LastEventID != "evt_a" {
				t.Errorf("after the failed fetch the row is %s from %s", after.Status, after.LastEventID)
			}
		})
	})
	t.Run("invoice before any subscription event", func(t *testing.T) {
		inTx(t, bdb, func(tx bun.Tx) {
			stripe.fail(errStripeDown)
			defer stripe.fail(nil)
			_, err := s.Handle(ctx, tx, paid)
			retried(t, err)
			if n := countRows(t, tx, "subscriptions") + countRows(t, tx, "subscription_invoices"); n != 0 {
				t.Errorf("%d rows written", n)
			}
		})
	})
	t.Run("answer unreadable", func(t *testing.T) {
		inTx(t, bdb, func(tx bun.Tx) {
			stripe.set(fixSub, []byte(`<html>502 Bad Gateway</html>`))
			_, err := s.Handle(ctx, tx, paid)
			retried(t, err)
		})
	})
	t.Run("Stripe does not know the subscription", func(t *testing.T) {
		inTx(t, bdb, func(tx bun.Tx) {
			gone := newFakeStripe()
			_, err := mustStore(t, gone).Handle(ctx, tx, paid)
			if fault.CodeOf(err) != fault.NotFound || fault.ActionOf(err) != fault.DeadLetter {
				t.Fatalf("error = %v, want a permanent not_found", err)
			}
		})
	})
}

// past_due keeps access for the plan's grace days counted from the renewal
// whose charge failed; a recovery gives it back to the period end, and the
// grace runs out on time with nothing but the clock.
func TestGracePeriodAndItsEnd(t *testing.T) {
	bdb := catalogDB(t)
	for _, shape := range shapes {
		stripe := newFakeStripe()
		s := mustStore(t, stripe)
		renewed := subEvent(t, shape, TypeSubscriptionUpdated, "evt_renewed", p2.start, p2, status(model.SubscriptionActive))
		pastDue := subEvent(t, shape, TypeSubscriptionUpdated, "evt_past_due", p2.start.Add(time.Hour), p2, status(model.SubscriptionPastDue))
		failed := invoiceEvt(t, shape, TypeInvoicePaymentFailed, "evt_failed", p2.start.Add(time.Hour), "in_renewal", p2, 0, time.Time{}, "r")
		graceEnd := p2.start.Add(3 * day)
		t.Run(shape, func(t *testing.T) {
			inTx(t, bdb, func(tx bun.Tx) {
				handle(t, s, tx, renewed)
				if out := handle(t, s, tx, failed); out.Result != ResultRecorded || out.After.Status != model.SubscriptionActive {
					t.Fatalf("a failed charge changed the subscription: %+v", out)
				}
				handle(t, s, tx, pastDue)
				got := loadSub(t, tx, fixSub)
				if !got.PastDueSince.Equal(p2.start) || !got.AccessUntil.Equal(graceEnd) {
					t.Fatalf("past_due_since=%v access_until=%v, want %v and %v", got.PastDueSince, got.AccessUntil, p2.start, graceEnd)
				}
				if a := accessAt(t, tx, fixCustomer, contentA1, graceEnd.Add(-time.Second)); !a.Active ||
					a.Type != model.AccessSubscription || a.Subscription.Status != model.SubscriptionPastDue || !a.ExpiresAt.Equal(graceEnd) {
					t.Errorf("inside the grace: %+v", a)
				}
				if a := accessAt(t, tx, fixCustomer, contentA1, graceEnd); a.Found || a.Active {
					t.Errorf("at the grace's end: %+v", a)
				}
				// The renewal was paid after all.
				handle(t, s, tx, subEvent(t, shape, TypeSubscriptionUpdated, "evt_recovered", p2.start.Add(2*day), p2, status(model.SubscriptionActive)))
				got = loadSub(t, tx, fixSub)
				if got.PastDueSince != nil || !got.AccessUntil.Equal(p2.end) {
					t.Errorf("recovered: past_due_since=%v access_until=%v", got.PastDueSince, got.AccessUntil)
				}
				// The late past_due event cannot take it back.
				if out := handle(t, s, tx, pastDue); out.Decision != Stale || loadSub(t, tx, fixSub).Status != model.SubscriptionActive {
					t.Errorf("late past_due = %+v", out)
				}
			})
			inTx(t, bdb, func(tx bun.Tx) {
				handle(t, s, tx, pastDue)
				// Retries exhausted: Stripe leaves it unpaid.
				handle(t, s, tx, subEvent(t, shape, TypeSubscriptionUpdated, "evt_unpaid", p2.start.Add(10*day), p2, status(model.SubscriptionUnpaid)))
				if got := loadSub(t, tx, fixSub); got.AccessUntil != nil || got.PastDueSince != nil {
					t.Errorf("unpaid: access_until=%v past_due_since=%v", got.AccessUntil, got.PastDueSince)
				}
				if a := accessAt(t, tx, fixCustomer, contentA1, p2.start.Add(time.Hour)); a.Found {
					t.Errorf("unpaid grants %+v", a)
				}
			})
		})
	}
}

// Cancelling at the period end keeps access to the end, exactly; the
// deletion at the end takes the row to canceled, and a late update cannot
// revive it.
func TestCancelAtPeriodEndThenDeleted(t *testing.T) {
	bdb := catalogDB(t)
	for _, shape := range shapes {
		s := mustStore(t, newFakeStripe())
		t.Run(shape, func(t *testing.T) {
			inTx(t, bdb, func(tx bun.Tx) {
				handle(t, s, tx, subEvent(t, shape, TypeSubscriptionCreated, "evt_1", t0, p1, status(model.SubscriptionActive)))
				cancel := subEvent(t, shape, TypeSubscriptionUpdated, "evt_2", t0.Add(5*day), p1, status(model.SubscriptionActive),
					cancelAtPeriodEnd(true), unixField("canceled_at", t0.Add(5*day)))
				handle(t, s, tx, cancel)
				if got := loadSub(t, tx, fixSub); !got.CancelAtPeriodEnd || !got.AccessUntil.Equal(p1.end) {
					t.Fatalf("cancel at period end: %v %v", got.CancelAtPeriodEnd, got.AccessUntil)
				}
				if a := accessAt(t, tx, fixCustomer, contentA1, p1.end.Add(-time.Second)); !a.Active {
					t.Errorf("before the period end: %+v", a)
				}
				if a := accessAt(t, tx, fixCustomer, contentA1, p1.end); a.Active {
					t.Errorf("at the period end: %+v", a)
				}
				handle(t, s, tx, subEvent(t, shape, TypeSubscriptionDeleted, "evt_3", p1.end, p1, status(model.SubscriptionCanceled),
					cancelAtPeriodEnd(true), unixField("canceled_at", t0.Add(5*day)), unixField("ended_at", p1.end)))
				got := loadSub(t, tx, fixSub)
				if got.Status != model.SubscriptionCanceled || got.AccessUntil != nil || !got.EndedAt.Equal(p1.end) {
					t.Fatalf("deleted: %s access_until=%v ended_at=%v", got.Status, got.AccessUntil, got.EndedAt)
				}
				if out := handle(t, s, tx, cancel); out.Decision != Stale {
					t.Errorf("late update = %v", out.Decision)
				}
			})
		})
	}
}

// A subscription deleted mid-period (cancelled at once, or by Stripe after
// failed retries) ends access at once.
func TestDeletedMidPeriodEndsAccessAtOnce(t *testing.T) {
	bdb := catalogDB(t)
	s := mustStore(t, newFakeStripe())
	inTx(t, bdb, func(tx bun.Tx) {
		handle(t, s, tx, subEvent(t, shapeOld, TypeSubscriptionUpdated, "evt_1", p2.start, p2, status(model.SubscriptionActive)))
		handle(t, s, tx, build(t, shapeOld, TypeSubscriptionDeleted, "evt_2", p2.start.Add(5*day), nil))
		if a := accessAt(t, tx, fixCustomer, contentA1, p2.start.Add(6*day)); a.Found {
			t.Errorf("a deleted subscription grants %+v", a)
		}
		if got := loadSub(t, tx, fixSub); got.Status != model.SubscriptionCanceled || got.CanceledAt == nil {
			t.Errorf("deleted: %+v", got)
		}
	})
}

// A trial grants access to its end; the first paid invoice after it and the
// update to active carry access on to the next period.
func TestTrialToActive(t *testing.T) {
	bdb := catalogDB(t)
	tr := period{t0, t0.Add(14 * day)}
	next := period{tr.end, tr.end.Add(31 * day)}
	for _, shape := range shapes {
		s := mustStore(t, newFakeStripe())
		t.Run(shape, func(t *testing.T) {
			inTx(t, bdb, func(tx bun.Tx) {
				handle(t, s, tx, subEvent(t, shape, TypeSubscriptionCreated, "evt_created", t0, tr, status(model.SubscriptionTrialing),
					unixField("trial_start", tr.start), unixField("trial_end", tr.end)))
				// The trial's invoice: nothing to pay, nothing to split.
				out := handle(t, s, tx, invoiceEvt(t, shape, TypeInvoicePaid, "evt_trial_inv", t0, "in_trial", tr, 0, t0, "trial"))
				if !out.InvoiceCreated || out.Invoice.AmountPaidCents != 0 || out.Invoice.PlatformFeeCents != 0 {
					t.Fatalf("trial invoice: %+v", out.Invoice)
				}
				handle(t, s, tx, build(t, shape, TypeSubscriptionTrialWillEnd, "evt_will_end", tr.end.Add(-3*day), nil))
				if a := accessAt(t, tx, fixCustomer, contentA1, tr.end.Add(-time.Second)); !a.Active || a.Subscription.Status != model.SubscriptionTrialing {
					t.Errorf("in the trial: %+v", a)
				}
				if a := accessAt(t, tx, fixCustomer, contentA1, tr.end); a.Active {
					t.Errorf("after the trial with no payment seen: %+v", a)
				}
				out = handle(t, s, tx, invoiceEvt(t, shape, TypeInvoicePaid, "evt_first_inv", tr.end.Add(time.Hour), "in_first", next, 1000, tr.end.Add(time.Hour), "first"))
				if out.Invoice.PlatformFeeCents != 150 || out.Invoice.CreatorPayoutCents != 680 {
					t.Errorf("first paid invoice split %d/%d/%d, want the 15 %% platform fee in force after t0+10d",
						out.Invoice.PlatformFeeCents, out.Invoice.OrganizationFeeCents, out.Invoice.CreatorPayoutCents)
				}
				handle(t, s, tx, subEvent(t, shape, TypeSubscriptionUpdated, "evt_active", tr.end, next, status(model.SubscriptionActive),
					unixField("trial_start", tr.start), unixField("trial_end", tr.end)))
				if a := accessAt(t, tx, fixCustomer, contentA1, next.end.Add(-time.Second)); !a.Active || a.Subscription.Status != model.SubscriptionActive {
					t.Errorf("after the trial, paid: %+v", a)
				}
			})
		})
	}
}

// A trial that ends without a payment method, under the plan's "pause"
// setting, leaves the subscription paused: no access until it resumes.
func TestTrialEndingWithoutPaymentMethodPauses(t *testing.T) {
	bdb := catalogDB(t)
	tr := period{t0, t0.Add(14 * day)}
	for _, shape := range shapes {
		s := mustStore(t, newFakeStripe())
		t.Run(shape, func(t *testing.T) {
			inTx(t, bdb, func(tx bun.Tx) {
				handle(t, s, tx, build(t, shape, TypeSubscriptionTrialWillEnd, "evt_will_end", tr.end.Add(-3*day), nil))
				handle(t, s, tx, build(t, shape, TypeSubscriptionPaused, "evt_paused", tr.end, nil))
				got := loadSub(t, tx, fixSub)
				if got.Status != model.SubscriptionPaused || got.AccessUntil != nil {
					t.Fatalf("paused: %s access_until=%v", got.Status, got.AccessUntil)
				}
				if a := accessAt(t, tx, fixCustomer, contentA1, tr.end.Add(-time.Hour)); a.Found {
					t.Errorf("paused grants %+v", a)
				}
				resumed := build(t, shape, TypeSubscriptionResumed, "evt_resumed", tr.end.Add(2*day), nil)
				handle(t, s, tx, resumed)
				if a := accessAt(t, tx, fixCustomer, contentA1, tr.end.Add(3*day)); !a.Active || !a.ExpiresAt.Equal(resumed.Subscription.PeriodEnd) {
					t.Errorf("resumed: %+v", a)
				}
			})
		})
	}
}

// An incomplete subscription grants nothing, and one that expires never
// granted anything, whatever the order of its events.
func TestIncompleteThatExpiresNeverGrantsAccess(t *testing.T) {
	bdb := catalogDB(t)
	created := subEvent(t, shapeNew, TypeSubscriptionCreated, "evt_created", t0, p1, status(model.SubscriptionIncomplete))
	failed := invoiceEvt(t, shapeNew, TypeInvoicePaymentFailed, "evt_failed", t0.Add(time.Second), "in_signup", p1, 0, time.Time{}, "s")
	expired := subEvent(t, shapeNew, TypeSubscriptionUpdated, "evt_expired", t0.Add(23*time.Hour), p1, status(model.SubscriptionIncompleteExpired))
	stripe := newFakeStripe()
	stripe.set(fixSub, subscriptionBody(t, shapeNew, p1, status(model.SubscriptionIncompleteExpired)))
	s := mustStore(t, stripe)
	permutations(3, func(order []int) {
		inTx(t, bdb, func(tx bun.Tx) {
			for _, i := range order {
				handle(t, s, tx, []Event{created, failed, expired}[i])
				if n, err := tx.NewSelect().Table("subscriptions").Where("access_until IS NOT NULL").Count(context.Background()); err != nil || n != 0 {
					t.Fatalf("order %v: %d subscriptions with access (%v)", order, n, err)
				}
				if a := accessAt(t, tx, fixCustomer, contentA1, t0.Add(time.Hour)); a.Found {
					t.Fatalf("order %v: access %+v", order, a)
				}
			}
			if got := loadSub(t, tx, fixSub); got.Status != model.SubscriptionIncompleteExpired {
				t.Errorf("order %v: ends %s", order, got.Status)
			}
			if n := countRows(t, tx, "subscription_invoices"); n != 0 {
				t.Errorf("order %v: %d invoices recorded for a failed charge", order, n)
			}
		})
	})
}

// What is not paystream's is ignored without asking Stripe; a metadata
// contract that is half there or names an unknown plan is a permanent error.
func TestForeignAndBrokenContracts(t *testing.T) {
	bdb := catalogDB(t)
	ctx := context.Background()
	stripe := newFakeStripe()
	s := mustStore(t, stripe)
	x := t0.Add(time.Hour)
	t.Run("foreign subscription", func(t *testing.T) {
		inTx(t, bdb, func(tx bun.Tx) {
			out := handle(t, s, tx, subEvent(t, shapeOld, TypeSubscriptionUpdated, "evt_f", x, p1, noMetadata))
			inv := invoiceEvt(t, shapeNew, TypeInvoicePaid, "evt_fi", x, "in_f", p1, 1000, x, "f")
			inv.Invoice.SubscriptionMetadata = map[string]string{}
			out2 := handle(t, s, tx, inv)
			if out.Result != ResultIgnored || out2.Result != ResultIgnored || stripe.callCount() != 0 || countRows(t, tx, "subscriptions") != 0 {
				t.Errorf("foreign: %+v %+v, %d fetches", out, out2, stripe.callCount())
			}
		})
	})
	t.Run("invoice of no subscription", func(t *testing.T) {
		inTx(t, bdb, func(tx bun.Tx) {
			ev := invoiceEvt(t, shapeOld, TypeInvoicePaid, "evt_oneoff", x, "in_oneoff", p1, 1000, x, "o")
			ev.Invoice.SubscriptionID = ""
			if out := handle(t, s, tx, ev); out.Result != ResultIgnored {
				t.Errorf("one-off invoice: %+v", out)
			}
		})
	})
	t.Run("checkout names the customer the subscription lacks", func(t *testing.T) {
		inTx(t, bdb, func(tx bun.Tx) {
			stripe.set(fixSub, subscriptionBody(t, shapeNew, p1, status(model.SubscriptionActive), noMetadata))
			out := handle(t, s, tx, build(t, shapeNew, TypeCheckoutCompleted, "evt_cs", x, nil))
			if out.Result != ResultApplied || !out.Refetched || out.After.CustomerID != fixCustomer || out.After.PlanID != planA {
				t.Errorf("checkout: %+v", out)
			}
		})
	})
	broken := []struct {
		name   string
		edit   subEdit
		code   fault.Code
		reason string
	}{
		{"half the contract", func(sub map[string]any) { sub["metadata"] = map[string]any{MetaCustomerID: "u"} }, fault.Invalid, "metadata_missing"},
		{"plan not a uuid", func(sub map[string]any) {
			sub["metadata"] = map[string]any{MetaCustomerID: "u", MetaPlanID: "gold", MetaOrganizationID: orgID.String()}
		}, fault.Invalid, "metadata_invalid"},
		{"unknown plan", link("u", otherOrg), fault.NotFound, "unknown_plan"},
		{"plan of another organization", func(sub map[string]any) {
			sub["metadata"] = map[string]any{MetaCustomerID: "u", MetaPlanID: planA.String(), MetaOrganizationID: otherOrg.String()}
		}, fault.Invalid, "organization_mismatch"},
	}
	for _, tt := range broken {
		t.Run(tt.name, func(t *testing.T) {
			inTx(t, bdb, func(tx bun.Tx) {
				_, err := s.Handle(ctx, tx, subEvent(t, shapeOld, TypeSubscriptionCreated, "evt_b", x, p1, tt.edit))
				if fault.CodeOf(err) != tt.code || fault.ReasonOf(err) != tt.reason {
					t.Errorf("error = %v (%s/%s), want %s/%s", err, fault.CodeOf(err), fault.ReasonOf(err), tt.code, tt.reason)
				}
			})
		})
	}
	if _, err := NewStore(nil, nil); err == nil {
		t.Error("NewStore without a Fetcher succeeded")
	}
	var e *fault.Error
	if _, err := s.Handle(ctx, bdb, Event{ID: "evt_empty", Kind: KindSubscription}); err == nil || errors.As(err, &e) {
		t.Errorf("an event without its object: %v", err)
	}
}
