package subscription

import (
	"context"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/model"
)

// invoicePayment is invoice_payment.paid of invoice invID paid by pi_<payment>
// (API 2025-03-31 and later, where the invoice names no payment).
func invoicePayment(t testing.TB, id string, at time.Time, invID, payment string) stripeevent.Event {
	t.Helper()
	return rawEvt(t, shapeNew, TypeInvoicePaymentPaid, id, at, func(p map[string]any) {
		p["id"], p["invoice"] = "inpay_"+payment, invID
		p["payment"] = map[string]any{"type": "payment_intent", "payment_intent": "pi_" + payment}
	})
}

// A signup and a renewal are posted to the ledger with each invoice's own
// split (10 % platform at signup, 15 % by the renewal), held until the
// release; a partial refund of the renewal's charge (a charge.refunded the
// purchase family hands over) reverses its split by split.Reversal; a
// dispute of the signup's charge holds its shares, a loss gives them back.
// A refund that comes before its invoice waits (purchase_not_found) and
// applies once the invoice is there. Both payload shapes, both paths.
func TestRenewalSplitAndRefundInTheLedger(t *testing.T) {
	forEachPath(t, func(t *testing.T, batch bool) {
		for _, shape := range shapes {
			t.Run(shape, func(t *testing.T) {
				ctx := context.Background()
				bdb := catalogDB(t)
				e := newFamEnv(t, bdb, newFakeStripe(), batch)
				creator, org, plat := ledger.CreatorOwner("cr_A"), ledger.OrganizationOwner(orgID), ledger.PlatformOwner
				bal := func(owner string, k ledger.Kind) int64 { return balance(t, bdb, owner, "usd", k) }

				e.mustDeliver(rawEvt(t, shape, TypeSubscriptionCreated, "evt_c", t0, subObj(shape, p1, status(model.SubscriptionActive))))
				e.mustDeliver(rawEvt(t, shape, TypeInvoicePaid, "evt_p1", t0.Add(2*time.Second),
					invoiceObj(shape, "in_signup", p1, 1000, t0.Add(2*time.Second), "signup")))
				if shape == shapeNew {
					e.mustDeliver(invoicePayment(t, "evt_ip1", t0.Add(3*time.Second), "in_signup", "signup"))
				}
				// The renewal's refund overtakes its invoice: it waits.
				early := rawRefund(t, "evt_r1", p2.start.Add(3*time.Hour), "ch_renewal", "pi_renewal", 1000, 400)
				if r := e.deliver(early)[0]; fault.CodeOf(r.Err) != fault.Pending {
					t.Fatalf("refund before its invoice: %v, %v; want pending", r.Outcome, r.Err)
				}
				e.mustDeliver(rawEvt(t, shape, TypeSubscriptionUpdated, "evt_u", p2.start, subObj(shape, p2, status(model.SubscriptionActive))))
				e.mustDeliver(rawEvt(t, shape, TypeInvoicePaid, "evt_p2", p2.start.Add(2*time.Hour),
					invoiceObj(shape, "in_renewal", p2, 1000, p2.start.Add(2*time.Hour), "renewal")))
				if shape == shapeNew {
					e.mustDeliver(invoicePayment(t, "evt_ip2", p2.start.Add(2*time.Hour), "in_renewal", "renewal"))
				}
				// signup 1000 → 100 / 180 / 720; renewal 1000 → 150 / 170 / 680.
				if c, o, p, s := bal(creator, ledger.Pending), bal(org, ledger.Pending), bal(plat, ledger.Pending), bal(plat, ledger.StripeClearing); c != 1400 || o != 350 || p != 250 || s != -2000 {
					t.Fatalf("after two invoices: creator %d org %d platform %d clearing %d; want 1400 350 250 -2000", c, o, p, s)
				}
				mustVerifyLedger(t, bdb)

				// The refund, redelivered after its invoice (twice).
				e.mustDeliver(early)
				e.mustDeliver(early)
				inv := loadInvoice(t, bdb, "in_renewal")
				if inv.RefundAmountCents != 400 || inv.ReversedPlatformFeeCents != 60 || inv.ReversedOrganizationFeeCents != 68 ||
					inv.ReversedCreatorPayoutCents != 272 {
					t.Fatalf("renewal after the refund: %+v; want 400 refunded, reversed 60 / 68 / 272", inv)
				}
				if c, o, p, s := bal(creator, ledger.Pending), bal(org, ledger.Pending), bal(plat, ledger.Pending), bal(plat, ledger.StripeClearing); c != 1128 || o != 282 || p != 190 || s != -1600 {
					t.Fatalf("after the refund: creator %d org %d platform %d clearing %d; want 1128 282 190 -1600", c, o, p, s)
				}
				mustVerifyLedger(t, bdb)

				// A dispute of the signup holds its shares; lost, gives them back.
				e.mustDeliver(rawDispute(t, TypeDisputeCreated, "evt_d1", t0.Add(20*day), "ch_signup", "pi_signup", 1000, "needs_response"))
				if c, d := bal(creator, ledger.Pending), bal(creator, ledger.Disputed); c != 408 || d != 720 {
					t.Fatalf("dispute open: creator pending %d disputed %d; want 408 720", c, d)
				}
				mustVerifyLedger(t, bdb)
				e.mustDeliver(rawDispute(t, TypeDisputeClosed, "evt_d2", t0.Add(40*day), "ch_signup", "pi_signup", 1000, "lost"))
				if c, d, s := bal(creator, ledger.Pending), bal(creator, ledger.Disputed), bal(plat, ledger.StripeClearing); c != 408 || d != 0 || s != -600 {
					t.Fatalf("dispute lost: creator pending %d disputed %d clearing %d; want 408 0 -600", c, d, s)
				}
				mustVerifyLedger(t, bdb)

				// The hold ends: what is left moves to available.
				n, err := ledger.ReleaseDue(ctx, bdb, ledger.Config{Hold: ledger.DefaultHold}, p2.start.Add(ledger.DefaultHold+3*time.Hour), 100)
				if err != nil || n != 2 {
					t.Fatalf("ReleaseDue = %d, %v; want both invoices", n, err)
				}
				if c, a := bal(creator, ledger.Pending), bal(creator, ledger.Available); c != 0 || a != 408 {
					t.Fatalf("released: creator pending %d available %d; want 0 408", c, a)
				}
				mustVerifyLedger(t, bdb)
				if got := e.metricOf("paystream_subscription_revenue_minor_units_total", map[string]string{"currency": "usd", "party": "gross"}); got != 2000 {
					t.Errorf("gross revenue counted %v, want 2000", got)
				}
				if got := e.metricOf("paystream_subscription_refunded_minor_units_total", map[string]string{"currency": "usd"}); got != 400 {
					t.Errorf("refunds counted %v, want 400", got)
				}
			})
		}
	})
}

// A plan of the whole organization pays the organization the creators'
// share; its invoices post no creator entry.
func TestOrganizationPlanInvoiceInTheLedger(t *testing.T) {
	forEachPath(t, func(t *testing.T, batch bool) {
		bdb := catalogDB(t)
		e := newFamEnv(t, bdb, newFakeStripe(), batch)
		e.mustDeliver(rawEvt(t, shapeOld, TypeSubscriptionCreated, "evt_c", t0,
			subObj(shapeOld, p1, status(model.SubscriptionActive), link("user_9", planOrg))))
		e.mustDeliver(rawEvt(t, shapeOld, TypeInvoicePaid, "evt_p", t0.Add(time.Second),
			func(inv map[string]any) {
				invoiceObj(shapeOld, "in_org", p1, 2500, t0.Add(time.Second), "org")(inv)
				inv["subscription_details"] = map[string]any{"metadata": map[string]any{}}
			}))
		org, plat := ledger.OrganizationOwner(orgID), ledger.PlatformOwner
		if o, p := balance(t, bdb, org, "usd", ledger.Pending), balance(t, bdb, plat, "usd", ledger.Pending); o != 2250 || p != 250 {
			t.Fatalf("organization plan: org pending %d platform pending %d; want 2250 250", o, p)
		}
		var creators int
		if err := bdb.NewRaw(`SELECT count(*) FROM ledger_accounts WHERE owner LIKE 'creator:%'`).Scan(context.Background(), &creators); err != nil || creators != 0 {
			t.Fatalf("creator accounts %d, %v; want none", creators, err)
		}
		mustVerifyLedger(t, bdb)
	})
}

// An invoice's payment, a partial refund of its charge and a dispute of it,
// delivered together (one batch on the batch path: three events' postings
// of one invoice written by the transaction's one ledger write) post what
// they post one by one: the sale once, then the refund's reversal and the
// dispute's hold of what is left.
func TestOneInvoiceSeveralEventsInOneBatch(t *testing.T) {
	forEachPath(t, func(t *testing.T, batch bool) {
		bdb := catalogDB(t)
		e := newFamEnv(t, bdb, newFakeStripe(), batch)
		creator, plat := ledger.CreatorOwner("cr_A"), ledger.PlatformOwner
		bal := func(owner string, k ledger.Kind) int64 { return balance(t, bdb, owner, "usd", k) }
		e.mustDeliver(rawEvt(t, shapeOld, TypeSubscriptionCreated, "evt_c", t0, subObj(shapeOld, p1, status(model.SubscriptionActive))))
		e.mustDeliver(
			rawEvt(t, shapeOld, TypeInvoicePaid, "evt_p1", t0.Add(2*time.Second),
				invoiceObj(shapeOld, "in_signup", p1, 1000, t0.Add(2*time.Second), "signup")),
			rawRefund(t, "evt_r1", t0.Add(3*time.Second), "ch_signup", "pi_signup", 1000, 400),
			rawDispute(t, TypeDisputeCreated, "evt_d1", t0.Add(4*time.Second), "ch_signup", "pi_signup", 600, "needs_response"),
		)
		// signup 1000 → 100 / 180 / 720; 400 refunded reverses 40 / 72 / 288;
		// the 600 disputed holds the rest of each share.
		if c, d, s := bal(creator, ledger.Pending), bal(creator, ledger.Disputed), bal(plat, ledger.StripeClearing); c != 0 || d != 432 || s != -600 {
			t.Fatalf("creator pending %d disputed %d, clearing %d; want 0 432 -600", c, d, s)
		}
		var sales int
		if err := bdb.NewRaw(`SELECT count(*) FROM ledger_transactions WHERE invoice_id = 'in_signup' AND cause = 'invoice'`).Scan(context.Background(), &sales); err != nil || sales != 1 {
			t.Fatalf("%d sale postings of the invoice (%v), want 1", sales, err)
		}
		mustVerifyLedger(t, bdb)
	})
}
