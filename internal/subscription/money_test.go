package subscription

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/model"
)

// chargeRefunded is a charge.refunded whose charge paid with payment (ch_
// and pi_ ids) and has refunded amount in total.
func chargeRefunded(t testing.TB, id string, created time.Time, payment string, amount int64, full bool) Event {
	return rawEvent(t, TypeChargeRefunded, id, created, map[string]any{
		"id": "ch_" + payment, "object": "charge", "amount": 1000, "amount_refunded": amount, "refunded": full,
		"currency": "usd", "payment_intent": "pi_" + payment,
		"refunds": map[string]any{"object": "list", "data": []any{map[string]any{"id": "re_" + id, "object": "refund", "reason": "requested_by_customer"}}},
	})
}

func disputeEvent(t testing.TB, typ, id string, created time.Time, payment, status string, amount int64) Event {
	return rawEvent(t, typ, id, created, map[string]any{
		"id": "dp_" + payment, "object": "dispute", "amount": amount, "currency": "usd", "status": status,
		"charge": "ch_" + payment, "payment_intent": "pi_" + payment,
	})
}

func loadInvoice(t testing.TB, idb bun.IDB, id string) *model.SubscriptionInvoice {
	t.Helper()
	var inv model.SubscriptionInvoice
	if err := idb.NewSelect().Model(&inv).Where("id = ?", id).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &inv
}

type parts struct{ platform, org, creator int64 }

func reversed(inv *model.SubscriptionInvoice) parts {
	return parts{inv.ReversedPlatformFeeCents, inv.ReversedOrganizationFeeCents, inv.ReversedCreatorPayoutCents}
}

// A renewal is split at its own time, and its refunds reverse that split in
// proportion: a partial refund, a late smaller report of it, then the rest.
func TestRenewalSplitAndItsRefund(t *testing.T) {
	bdb := catalogDB(t)
	ctx := context.Background()
	s := mustStore(t, newFakeStripe())
	paidAt := p2.start.Add(2 * time.Hour)
	inTx(t, bdb, func(tx bun.Tx) {
		handle(t, s, tx, subEvent(t, shapeOld, TypeSubscriptionUpdated, "evt_renewed", p2.start, p2, status(model.SubscriptionActive)))
		out := handle(t, s, tx, invoiceEvt(t, shapeOld, TypeInvoicePaid, "evt_paid2", paidAt, "in_renewal", p2, 1000, paidAt, "renewal"))
		inv := out.Invoice
		if inv.PlatformFeeCents != 150 || inv.OrganizationFeeCents != 170 || inv.CreatorPayoutCents != 680 ||
			inv.PlatformFeeBps != 1500 || *inv.PlatformFeeConfigID != configHigh || *inv.CreatorOrgAgreementID != agreementA {
			t.Fatalf("renewal split: %+v", inv)
		}

		out = handle(t, s, tx, chargeRefunded(t, "evt_r1", paidAt.Add(day), "renewal", 400, false))
		inv = loadInvoice(t, tx, "in_renewal")
		// split.Reversal(400 of 1000) of 150/170/680: ceil(60), ceil(68), the rest 272.
		if out.RefundDelta != 400 || inv.Status != model.InvoicePartiallyRefunded || reversed(inv) != (parts{60, 68, 272}) {
			t.Fatalf("partial refund: delta %d, %s, reversed %+v", out.RefundDelta, inv.Status, reversed(inv))
		}
		if out := handle(t, s, tx, chargeRefunded(t, "evt_r0", paidAt.Add(time.Hour), "renewal", 300, false)); out.Result != ResultDuplicate {
			t.Errorf("an older, smaller refund report: %+v", out)
		}
		out = handle(t, s, tx, chargeRefunded(t, "evt_r2", paidAt.Add(2*day), "renewal", 1000, true))
		inv = loadInvoice(t, tx, "in_renewal")
		if out.RefundDelta != 600 || inv.Status != model.InvoiceRefunded || !inv.RefundedAt.Equal(paidAt.Add(2*day)) ||
			reversed(inv) != (parts{150, 170, 680}) || *inv.StripeRefundID != "re_evt_r2" {
			t.Fatalf("full refund: delta %d, %+v", out.RefundDelta, inv)
		}
		// Refunding an invoice does not end the membership: Stripe says so
		// with its own events if the merchant cancels it.
		if got := loadSub(t, tx, fixSub); got.Status != model.SubscriptionActive {
			t.Errorf("subscription after the refund: %s", got.Status)
		}
		ev := chargeRefunded(t, "evt_r3", paidAt.Add(3*day), "renewal", 1000, true)
		ev.Refund.Currency = "eur"
		if _, err := s.Handle(ctx, tx, ev); fault.CodeOf(err) != fault.Invalid || fault.ReasonOf(err) != "currency_mismatch" {
			t.Errorf("refund in another currency: %v", err)
		}
		_, err := s.Handle(ctx, tx, chargeRefunded(t, "evt_r4", paidAt, "purchase", 100, false))
		if !errors.Is(err, ErrInvoiceNotFound) {
			t.Errorf("refund of a charge no invoice has: %v, want ErrInvoiceNotFound", err)
		}
	})
}

// Disputes move forward only; a lost one gives the disputed amount back
// like a refund, on top of refunds already made, never beyond the amount.
func TestDisputeOfAnInvoiceCharge(t *testing.T) {
	bdb := catalogDB(t)
	s := mustStore(t, newFakeStripe())
	paidAt := t0.Add(2 * time.Second)
	setup := func(t *testing.T, tx bun.Tx) {
		handle(t, s, tx, subEvent(t, shapeOld, TypeSubscriptionCreated, "evt_c", t0, p1, status(model.SubscriptionActive)))
		handle(t, s, tx, invoiceEvt(t, shapeOld, TypeInvoicePaid, "evt_p", paidAt, "in_signup", p1, 1000, paidAt, "signup"))
	}
	t.Run("opened then lost", func(t *testing.T) {
		inTx(t, bdb, func(tx bun.Tx) {
			setup(t, tx)
			handle(t, s, tx, disputeEvent(t, TypeDisputeCreated, "evt_d1", t0.Add(day), "signup", "needs_response", 1000))
			inv := loadInvoice(t, tx, "in_signup")
			if *inv.DisputeStatus != model.DisputeOpen || reversed(inv) != (parts{}) {
				t.Fatalf("opened: %v %+v", *inv.DisputeStatus, reversed(inv))
			}
			handle(t, s, tx, disputeEvent(t, TypeDisputeClosed, "evt_d2", t0.Add(30*day), "signup", "lost", 1000))
			inv = loadInvoice(t, tx, "in_signup")
			if *inv.DisputeStatus != model.DisputeLost || reversed(inv) != (parts{100, 180, 720}) || inv.Status != model.InvoicePaid {
				t.Fatalf("lost: %v %s %+v", *inv.DisputeStatus, inv.Status, reversed(inv))
			}
			for _, late := range []Event{
				disputeEvent(t, TypeDisputeCreated, "evt_d1b", t0.Add(day), "signup", "needs_response", 1000),
				disputeEvent(t, TypeDisputeClosed, "evt_d3", t0.Add(31*day), "signup", "won", 1000),
			} {
				if out := handle(t, s, tx, late); out.Result != ResultDuplicate {
					t.Errorf("%s after the loss: %+v", late.ID, out)
				}
			}
		})
	})
	t.Run("close overtakes open, won", func(t *testing.T) {
		inTx(t, bdb, func(tx bun.Tx) {
			setup(t, tx)
			handle(t, s, tx, disputeEvent(t, TypeDisputeClosed, "evt_d2", t0.Add(30*day), "signup", "won", 1000))
			handle(t, s, tx, disputeEvent(t, TypeDisputeCreated, "evt_d1", t0.Add(day), "signup", "needs_response", 1000))
			inv := loadInvoice(t, tx, "in_signup")
			if *inv.DisputeStatus != model.DisputeWon || inv.DisputedAt == nil || reversed(inv) != (parts{}) {
				t.Errorf("won: %+v", inv)
			}
		})
	})
	t.Run("refunded in part, then lost", func(t *testing.T) {
		inTx(t, bdb, func(tx bun.Tx) {
			setup(t, tx)
			handle(t, s, tx, chargeRefunded(t, "evt_r", t0.Add(day), "signup", 300, false))
			handle(t, s, tx, disputeEvent(t, TypeDisputeClosed, "evt_d", t0.Add(30*day), "signup", "lost", 1000))
			inv := loadInvoice(t, tx, "in_signup")
			if reversed(inv) != (parts{100, 180, 720}) || inv.RefundAmountCents != 300 {
				t.Errorf("refund + loss gives back at most the amount: %+v", inv)
			}
		})
	})
	t.Run("closed with another status", func(t *testing.T) {
		inTx(t, bdb, func(tx bun.Tx) {
			setup(t, tx)
			if out := handle(t, s, tx, disputeEvent(t, TypeDisputeClosed, "evt_d", t0.Add(30*day), "signup", "charge_refunded", 1000)); out.Result != ResultRecorded {
				t.Errorf("closed charge_refunded: %+v", out)
			}
		})
	})
}

// From API 2025-03-31 an invoice names no charge: invoice_payment.paid
// links it, and a refund then finds its invoice whichever came first.
func TestRefundFindsItsInvoiceThroughInvoicePayment(t *testing.T) {
	bdb := catalogDB(t)
	s := mustStore(t, newFakeStripe())
	paidAt := t0.Add(2 * time.Second)
	sub := subEvent(t, shapeNew, TypeSubscriptionCreated, "evt_c", t0, p1, status(model.SubscriptionActive))
	paid := invoiceEvt(t, shapeNew, TypeInvoicePaid, "evt_p", paidAt, "in_1QFixSignup00000000001", p1, 1000, paidAt, "x")
	link := build(t, shapeNew, TypeInvoicePaymentPaid, "evt_link", paidAt, nil)
	refund := chargeRefunded(t, "evt_r", t0.Add(day), "3QFixSignup000000000001", 1000, true)
	refund.Refund.ChargeID = "ch_3QFixSignup000000000009" // the charge is unknown; the payment intent is linked
	for _, order := range [][]Event{{sub, paid, link}, {link, sub, paid}} {
		inTx(t, bdb, func(tx bun.Tx) {
			for _, ev := range order {
				handle(t, s, tx, ev)
			}
			if out := handle(t, s, tx, link); out.Result != ResultDuplicate {
				t.Errorf("link again: %+v", out)
			}
			out := handle(t, s, tx, refund)
			if out.Invoice == nil || out.Invoice.Status != model.InvoiceRefunded || out.RefundDelta != 1000 {
				t.Errorf("order %s first: refund %+v", order[0].ID, out)
			}
		})
	}
}

// An organization plan has no single creator: the organization takes what
// the platform leaves, and the schema holds the creator's share at zero.
func TestOrganizationPlanInvoiceSplit(t *testing.T) {
	bdb := catalogDB(t)
	s := mustStore(t, newFakeStripe())
	inTx(t, bdb, func(tx bun.Tx) {
		handle(t, s, tx, subEvent(t, shapeOld, TypeSubscriptionCreated, "evt_c", t0, p1, status(model.SubscriptionActive), link("user_43", planOrg)))
		out := handle(t, s, tx, invoiceEvt(t, shapeOld, TypeInvoicePaid, "evt_p", t0.Add(time.Second), "in_org", p1, 2500, t0.Add(time.Second), "org"))
		inv := out.Invoice
		if inv.CreatorID != nil || inv.PlatformFeeCents != 250 || inv.OrganizationFeeCents != 2250 || inv.CreatorPayoutCents != 0 ||
			inv.OrganizationFeeBps != split.MaxBps || inv.CreatorOrgAgreementID != nil {
			t.Errorf("organization plan split: %+v", inv)
		}
		handle(t, s, tx, chargeRefunded(t, "evt_r", t0.Add(day), "org", 1001, false))
		if inv := loadInvoice(t, tx, "in_org"); reversed(inv) != (parts{101, 900, 0}) {
			t.Errorf("organization plan reversal: %+v", reversed(inv))
		}
	})
}

// The reversal rule over thousands of random invoices: the parts sum to
// what was returned, none exceeds its share, a full return gives back the
// snapshot exactly, and a larger return never gives a party anything back.
func TestProportionalReversalProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 23))
	for c := 0; c < 20000; c++ {
		amount := rng.Int64N(1_000_000_000)
		if c%4 == 0 {
			amount = rng.Int64N(100)
		}
		terms := split.Terms{PlatformBps: rng.IntN(split.MaxBps + 1), OrganizationBps: rng.IntN(split.MaxBps + 1)}
		if c%5 == 0 {
			terms.OrganizationBps = split.MaxBps
		}
		sp, err := split.Compute(amount, terms)
		if err != nil {
			t.Fatal(err)
		}
		inv := &model.SubscriptionInvoice{ID: "in_p", AmountPaidCents: amount, PlatformFeeCents: sp.Platform,
			OrganizationFeeCents: sp.Organization, CreatorPayoutCents: sp.Creator,
			PlatformFeeBps: terms.PlatformBps, OrganizationFeeBps: terms.OrganizationBps}
		returns := []int64{0, rng.Int64N(amount + 1), rng.Int64N(amount + 1), rng.Int64N(amount + 1), amount}
		slices.Sort(returns)
		var prev split.Parts
		var prevR int64
		for _, r := range returns {
			inv.RefundAmountCents = r
			rev, err := proportionalReversal(inv)
			if err != nil {
				t.Fatalf("amount %d terms %+v return %d: %v", amount, terms, r, err)
			}
			if rev.Platform+rev.Organization+rev.Creator != r {
				t.Fatalf("amount %d terms %+v return %d: parts %+v do not sum", amount, terms, r, rev)
			}
			if r == amount && (rev.Platform != sp.Platform || rev.Organization != sp.Organization || rev.Creator != sp.Creator) {
				t.Fatalf("full return %+v is not the split %+v", rev, sp)
			}
			if rev.Platform < prev.Platform || rev.Organization < prev.Organization || rev.Creator < prev.Creator {
				t.Fatalf("amount %d terms %+v: return %d gives %+v, less than %d gave %+v", amount, terms, r, rev, prevR, prev)
			}
			prev, prevR = rev, r
		}
	}
}
