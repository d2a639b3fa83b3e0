package subscription

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/model"
)

// signupAndRenewal is a membership bought at t0 and renewed once, as six
// events:
//
//	created  customer.subscription.created  t0           incomplete, period 1
//	paid1    invoice.paid (signup)          t0+2s        paid at t0+2s (10 % platform fee then)
//	checkout checkout.session.completed     t0+3s
//	renewed  customer.subscription.updated  p2.start     active, period 2
//	failed   invoice.payment_failed         p2.start+1h  the renewal's first attempt, delivered late
//	paid2    invoice.paid (renewal)         p2.start+2h  paid then (15 % platform fee by then)
//
// Stripe's present state (what a fetch answers) is the renewed one.
func signupAndRenewal(t testing.TB, shape string) (events []Event, truth []byte) {
	payloads, truth := signupAndRenewalPayloads(t, shape)
	for _, b := range payloads {
		ev, err := DecodeEvent(b)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	return events, truth
}

// signupAndRenewalPayloads are signupAndRenewal's events as Stripe sends
// them.
func signupAndRenewalPayloads(t testing.TB, shape string) (payloads [][]byte, truth []byte) {
	created := payloadOf(t, shape, TypeSubscriptionCreated, "evt_created", t0, subObj(shape, p1, status(model.SubscriptionIncomplete)))
	paid1 := payloadOf(t, shape, TypeInvoicePaid, "evt_paid1", t0.Add(2*time.Second),
		invoiceObj(shape, "in_signup", p1, 1000, t0.Add(2*time.Second), "signup"))
	checkout := payloadOf(t, shape, TypeCheckoutCompleted, "evt_checkout", t0.Add(3*time.Second), nil)
	renewed := payloadOf(t, shape, TypeSubscriptionUpdated, "evt_renewed", p2.start, subObj(shape, p2, status(model.SubscriptionActive)))
	failed := payloadOf(t, shape, TypeInvoicePaymentFailed, "evt_failed", p2.start.Add(time.Hour),
		invoiceObj(shape, "in_renewal", p2, 0, time.Time{}, "renewal"))
	paid2 := payloadOf(t, shape, TypeInvoicePaid, "evt_paid2", p2.start.Add(2*time.Hour),
		invoiceObj(shape, "in_renewal", p2, 1000, p2.start.Add(2*time.Hour), "renewal"))
	return [][]byte{created, paid1, checkout, renewed, failed, paid2},
		subscriptionBody(t, shape, p2, status(model.SubscriptionActive))
}

// finalState is what a delivery order leaves: the subscription and its
// invoices, without the bookkeeping that records which event got there
// first (event_created, last_event_id: an invoice that overtook every
// subscription event stamps its own time on the state it fetched) and the
// clock columns.
type finalState struct {
	Sub      model.Subscription
	Invoices []model.SubscriptionInvoice
}

func readFinal(t testing.TB, idb bun.IDB, id string) finalState {
	t.Helper()
	ctx := context.Background()
	var f finalState
	if err := idb.NewSelect().Model(&f.Sub).Where("id = ?", id).Scan(ctx); err != nil {
		t.Fatalf("read subscription %s: %v", id, err)
	}
	if err := idb.NewSelect().Model(&f.Invoices).Where("subscription_id = ?", id).Order("id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	f.Sub.EventCreated, f.Sub.LastEventID = time.Time{}, ""
	f.Sub.CreatedAt, f.Sub.UpdatedAt = time.Time{}, time.Time{}
	for i := range f.Invoices {
		f.Invoices[i].CreatedAt, f.Invoices[i].UpdatedAt = time.Time{}, time.Time{}
	}
	return f
}

// wantFinal is the one state every order must reach: active in period 2,
// access to its end, both invoices split at their own times.
func wantFinal(shape string) finalState {
	cus, creator := "cus_RFixMember0001", "cr_A"
	until := p2.end
	started := t0
	cycle, create := "subscription_cycle", "subscription_create"
	inv := func(id string, p period, paidAt time.Time, platform, org, cr int64, platformBps int, config uuid.UUID, pay string) model.SubscriptionInvoice {
		i := model.SubscriptionInvoice{ID: id, SubscriptionID: fixSub, PlanID: planA, OrganizationID: orgID, CreatorID: &creator,
			PeriodStart: p.start, PeriodEnd: p.end, AmountPaidCents: 1000, Currency: "usd",
			PlatformFeeCents: platform, OrganizationFeeCents: org, CreatorPayoutCents: cr, PlatformFeeBps: platformBps,
			OrganizationFeeBps: 2000, PlatformFeeConfigID: &config, CreatorOrgAgreementID: &agreementA,
			Status: model.InvoicePaid, PaidAt: paidAt}
		if shape == shapeOld {
			ch, pi := "ch_"+pay, "pi_"+pay
			i.StripeChargeID, i.StripePaymentIntentID = &ch, &pi
		}
		return i
	}
	i1 := inv("in_renewal", p2, p2.start.Add(2*time.Hour), 150, 170, 680, 1500, configHigh, "renewal")
	i2 := inv("in_signup", p1, t0.Add(2*time.Second), 100, 180, 720, 1000, configLow, "signup")
	i1.BillingReason, i2.BillingReason = &cycle, &create
	return finalState{
		Sub: model.Subscription{ID: fixSub, CustomerID: fixCustomer, PlanID: planA, StripeCustomerID: &cus,
			Status: model.SubscriptionActive, CurrentPeriodStart: p2.start, CurrentPeriodEnd: p2.end,
			StartedAt: &started, AccessUntil: &until},
		Invoices: []model.SubscriptionInvoice{i1, i2},
	}
}

// permutations calls f with every order of 0..n-1 (Heap's algorithm).
func permutations(n int, f func([]int)) {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	c := make([]int, n)
	f(p)
	for i := 0; i < n; {
		if c[i] < i {
			if i%2 == 0 {
				p[0], p[i] = p[i], p[0]
			} else {
				p[c[i]], p[i] = p[i], p[c[i]]
			}
			f(p)
			c[i]++
			i = 0
		} else {
			c[i] = 0
			i++
		}
	}
}

// The convergence test: the six events of a signup and a renewal,
// delivered in all 720 orders (each followed by two redeliveries), in both
// payload shapes, each end in one identical state: status, period,
// access_until, invoices and their splits. Each order runs in its own
// transaction on one database, rolled back after.
func TestEveryOrderConverges(t *testing.T) {
	bdb := catalogDB(t)
	ctx := context.Background()
	for _, shape := range shapes {
		t.Run(shape, func(t *testing.T) {
			events, truth := signupAndRenewal(t, shape)
			stripe := newFakeStripe()
			stripe.set(fixSub, truth)
			s := mustStore(t, stripe)
			want := wantFinal(shape)
			orders := 0
			permutations(len(events), func(order []int) {
				orders++
				tx, err := bdb.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = tx.Rollback() }()
				seq := append(append([]int(nil), order...), order[0], order[3])
				for _, i := range seq {
					if _, err := s.Handle(ctx, tx, events[i]); err != nil {
						t.Fatalf("order %v: %s: %v", order, events[i].ID, err)
					}
				}
				if diff := cmp.Diff(want, readFinal(t, tx, fixSub)); diff != "" {
					t.Fatalf("order %v: final state (-want +got):\n%s", order, diff)
				}
				if err := tx.Rollback(); err != nil {
					t.Fatal(err)
				}
			})
			if orders != 720 {
				t.Fatalf("%d orders, want 720", orders)
			}
			t.Logf("%s: 720 orders, %d fetches from Stripe", shape, stripe.callCount())
		})
	}
}

// Random deliveries with many redeliveries (the broker's at-least-once, a
// second event id is not needed: the same id twice is the harder case for
// the state), interleaved anywhere, converge too.
func TestRandomRedeliveriesConverge(t *testing.T) {
	bdb := catalogDB(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 20))
	for _, shape := range shapes {
		events, truth := signupAndRenewal(t, shape)
		stripe := newFakeStripe()
		stripe.set(fixSub, truth)
		s := mustStore(t, stripe)
		want := wantFinal(shape)
		for c := 0; c < 60; c++ {
			seq := rng.Perm(len(events))
			for k := rng.IntN(8); k > 0; k-- {
				at := rng.IntN(len(seq) + 1)
				seq = append(seq[:at], append([]int{rng.IntN(len(events))}, seq[at:]...)...)
			}
			inTx(t, bdb, func(tx bun.Tx) {
				for _, i := range seq {
					if _, err := s.Handle(ctx, tx, events[i]); err != nil {
						t.Fatalf("%s %v: %s: %v", shape, seq, events[i].ID, err)
					}
				}
				if diff := cmp.Diff(want, readFinal(t, tx, fixSub)); diff != "" {
					t.Fatalf("%s %v: final state (-want +got):\n%s", shape, seq, diff)
				}
			})
		}
	}
}
