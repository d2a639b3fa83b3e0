package subscription

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/model"
)

// The route table holds both families: each type has one route, the
// subscription family's own types are its, and the shared ones stay the
// purchase family's (which hands over what is a subscription's).
func TestFamiliesShareOneRouteTable(t *testing.T) {
	bdb := catalogDB(t)
	e := newFamEnv(t, bdb, newFakeStripe(), false)
	got := e.h.Types()
	for _, typ := range append(HandledTypes(), purchase.HandledTypes()...) {
		if !slices.Contains(got, typ) {
			t.Errorf("%s is not routed (routed: %v)", typ, got)
		}
	}
	if len(got) != len(HandledTypes())+len(purchase.HandledTypes()) {
		t.Errorf("routed %d types, want %d", len(got), len(HandledTypes())+len(purchase.HandledTypes()))
	}
	for _, typ := range HandledTypes() {
		if slices.Contains(purchase.HandledTypes(), typ) {
			t.Errorf("%s is routed by both families", typ)
		}
	}
}

// finalRenamed is wantFinal of the story's run n (renamed ids).
func finalRenamed(shape string, n int) finalState {
	f := wantFinal(shape)
	sfx := "_" + strconv.Itoa(n)
	f.Sub.ID += sfx
	for i := range f.Invoices {
		inv := &f.Invoices[i]
		inv.ID += sfx
		inv.SubscriptionID += sfx
		for _, p := range []**string{&inv.StripeChargeID, &inv.StripePaymentIntentID} {
			if *p != nil {
				v := **p + sfx
				*p = &v
			}
		}
	}
	return f
}

// The signup and renewal of the package's convergence test, in a random
// sample of orders with redeliveries, through the processor's real route
// table (the checkout handed over by the purchase family) on both paths and
// in both payload shapes: every order ends in the one final state, with the
// two invoices posted to the ledger, one started and one renewed event.
func TestRandomOrdersThroughTheFamily(t *testing.T) {
	forEachPath(t, func(t *testing.T, batch bool) {
		bdb := catalogDB(t)
		stripe := newFakeStripe()
		e := newFamEnv(t, bdb, stripe, batch)
		rng := rand.New(rand.NewPCG(31, uint64(len(t.Name()))))
		n := 0
		for _, shape := range shapes {
			payloads, truth := signupAndRenewalPayloads(t, shape)
			for range 16 {
				n++
				evs := make([]stripeevent.Event, len(payloads))
				for i, p := range payloads {
					evs[i] = stripeEvent(t, renamed(p, n))
				}
				id := fixSub + "_" + strconv.Itoa(n)
				stripe.set(id, renamed(truth, n))
				seq := rng.Perm(len(evs))
				for k := rng.IntN(4); k > 0; k-- { // redeliveries anywhere
					at := rng.IntN(len(seq) + 1)
					seq = slices.Insert(seq, at, rng.IntN(len(evs)))
				}
				for len(seq) > 0 {
					size := 1
					if batch {
						size = min(len(seq), 1+rng.IntN(4))
					}
					chunk := make([]stripeevent.Event, size)
					for j := range size {
						chunk[j] = evs[seq[j]]
					}
					e.mustDeliver(chunk...)
					seq = seq[size:]
				}
				if diff := cmp.Diff(finalRenamed(shape, n), readFinal(t, bdb, id)); diff != "" {
					t.Fatalf("%s run %d: final state (-want +got):\n%s", shape, n, diff)
				}
				kinds := outboxKinds(t, bdb, id)
				slices.Sort(kinds)
				if !slices.Equal(kinds, []string{EventRenewed, EventStarted}) {
					t.Fatalf("%s run %d: events %v, want one started and one renewed", shape, n, kinds)
				}
			}
		}
		mustVerifyLedger(t, bdb)
		var posted int
		if err := bdb.NewRaw(`SELECT count(*) FROM ledger_transactions WHERE cause = 'invoice'`).Scan(context.Background(), &posted); err != nil {
			t.Fatal(err)
		}
		if posted != 2*n {
			t.Fatalf("%d invoice postings, want %d", posted, 2*n)
		}
	})
}

// A checkout session in payment mode is still a purchase's, and one in
// subscription mode never becomes a purchase; a refund whose charge pays
// neither a purchase nor an invoice waits for one (purchase_not_found).
func TestSharedTypesGoWhereTheyBelong(t *testing.T) {
	forEachPath(t, func(t *testing.T, batch bool) {
		bdb := catalogDB(t)
		e := newFamEnv(t, bdb, newFakeStripe(), batch)
		ctx := context.Background()
		sub := rawEvt(t, shapeOld, TypeSubscriptionCreated, "evt_c1", t0, subObj(shapeOld, p1, status(model.SubscriptionActive)))
		co := rawEvt(t, shapeOld, TypeCheckoutCompleted, "evt_co", t0.Add(time.Second), nil)
		if got := e.mustDeliver(sub, co); got[1] != handling.Applied && got[1] != handling.Duplicate {
			t.Fatalf("subscription checkout = %s", got[1])
		}
		var purchases int
		if err := bdb.NewRaw(`SELECT count(*) FROM purchases`).Scan(ctx, &purchases); err != nil || purchases != 0 {
			t.Fatalf("purchases after a subscription checkout = %d, %v", purchases, err)
		}
		var outcome string
		if err := bdb.NewRaw(`SELECT outcome FROM stripe_events WHERE event_id = 'evt_co'`).Scan(ctx, &outcome); err != nil {
			t.Fatal(err)
		}
		if outcome != model.EventRecorded {
			t.Errorf("checkout of an existing subscription recorded as %q, want %q", outcome, model.EventRecorded)
		}
		// A refund of a charge nobody has.
		refund := rawRefund(t, "evt_r0", t0.Add(5*time.Second), "ch_nobody", "pi_nobody", 100, 100)
		r := e.deliver(refund)[0]
		if fault.CodeOf(r.Err) != fault.Pending || fault.ReasonOf(r.Err) != "purchase_not_found" {
			t.Fatalf("refund of an unknown charge = %v, %v; want pending purchase_not_found", r.Outcome, r.Err)
		}
	})
}

// The handler applies the events of a subscription that is not
// paystream's, and records them with a note (eventtx has no "ignored" for
// routed types).
func TestForeignSubscriptionIsRecorded(t *testing.T) {
	forEachPath(t, func(t *testing.T, batch bool) {
		bdb := catalogDB(t)
		e := newFamEnv(t, bdb, newFakeStripe(), batch)
		ev := rawEvt(t, shapeNew, TypeSubscriptionCreated, "evt_f", t0, subObj(shapeNew, p1, noMetadata))
		if got := e.mustDeliver(ev); got[0] != handling.Applied {
			t.Fatalf("outcome %s", got[0])
		}
		var row model.StripeEvent
		if err := bdb.NewSelect().Model(&row).Where("event_id = 'evt_f'").Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		if row.Outcome != model.EventRecorded || row.Error == nil || *row.Error == "" {
			t.Fatalf("stripe_events row %+v", row)
		}
		if countRows(t, bdb, "subscriptions") != 0 {
			t.Fatal("a foreign subscription was stored")
		}
	})
}

// A permanent payload error is dead-lettered, whatever the path.
func TestBadPayloadIsPermanent(t *testing.T) {
	forEachPath(t, func(t *testing.T, batch bool) {
		bdb := catalogDB(t)
		e := newFamEnv(t, bdb, newFakeStripe(), batch)
		bad := rawEvt(t, shapeOld, TypeSubscriptionUpdated, "evt_bad", t0, func(sub map[string]any) {
			sub["metadata"] = map[string]any{MetaCustomerID: "user_1"} // half a contract
		})
		r := e.deliver(bad)[0]
		if fault.ActionOf(r.Err) != fault.DeadLetter || fault.ReasonOf(r.Err) != "metadata_missing" {
			t.Fatalf("half a contract = %v; want a dead letter metadata_missing", r.Err)
		}
		if countRows(t, bdb, "stripe_events") != 0 {
			t.Fatal("a refused event was recorded")
		}
	})
}
