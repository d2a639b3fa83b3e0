package subscription

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/paystream/paystream/model"
)

func snap(st string, p period, f ...func(*Subscription)) *Subscription {
	s := &Subscription{ID: "sub_1", Facts: Facts{Status: st, PeriodStart: p.start, PeriodEnd: p.end}}
	for _, g := range f {
		g(s)
	}
	return s
}

func TestApply(t *testing.T) {
	active := settle(State{GraceDays: 3}, *snap(model.SubscriptionActive, p2), p2.start, "evt_renewal")
	tests := []struct {
		name     string
		cur      State
		ev       Observation
		want     Decision
		wantNext *State // nil: next is cur
	}{
		{"first event decides", State{GraceDays: 3},
			Observation{"evt_renewal", p2.start, snap(model.SubscriptionActive, p2)}, Applied, &active},
		{"first event shows nothing: fetch", State{GraceDays: 3},
			Observation{"evt_inv", p2.start, nil}, Refetch, nil},
		{"first event undecidable: fetch", State{GraceDays: 3},
			Observation{"evt_x", p2.start, snap("dormant", p2)}, Refetch, nil},
		{"a late created saying incomplete never overwrites active", active,
			Observation{"evt_created", t0, snap(model.SubscriptionIncomplete, p1)}, Stale, nil},
		{"an older undecidable payload is just stale", active,
			Observation{"evt_x", t0, snap("dormant", p1)}, Stale, nil},
		{"same second: fetch", active,
			Observation{"evt_other", p2.start, snap(model.SubscriptionActive, p2, func(s *Subscription) { s.CancelAtPeriodEnd = true })}, Refetch, nil},
		{"newer but undecidable: fetch", active,
			Observation{"evt_x", p2.start.Add(time.Second), snap(model.SubscriptionActive, period{})}, Refetch, nil},
		{"the very event again", active,
			Observation{"evt_renewal", p2.start, snap(model.SubscriptionActive, p2)}, Duplicate, nil},
		{"an invoice says nothing of the state", active,
			Observation{"evt_inv", p2.start.Add(time.Hour), nil}, Unchanged, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, d := Apply(tt.cur, tt.ev)
			if d != tt.want {
				t.Fatalf("decision = %v, want %v", d, tt.want)
			}
			want := tt.cur
			if tt.wantNext != nil {
				want = *tt.wantNext
			}
			if diff := cmp.Diff(want, next); diff != "" {
				t.Errorf("next (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("newer applies and recomputes access", func(t *testing.T) {
		next, d := Apply(active, Observation{"evt_pd", p2.start.Add(time.Hour), snap(model.SubscriptionPastDue, p2)})
		if d != Applied || next.Status != model.SubscriptionPastDue || !next.PastDueSince.Equal(p2.start) ||
			!next.AccessUntil.Equal(p2.start.Add(3*day)) || next.EventID != "evt_pd" {
			t.Errorf("Apply = %v %+v", d, next)
		}
	})
	t.Run("fetched truth keeps the newest event time", func(t *testing.T) {
		truth := *snap(model.SubscriptionActive, p2, func(s *Subscription) { s.CancelAtPeriodEnd = true })
		next, err := ApplyFetched(active, truth, Observation{EventID: "evt_tie", Created: p2.start})
		if err != nil || !next.CancelAtPeriodEnd || !next.EventCreated.Equal(p2.start) || next.EventID != "evt_tie" {
			t.Errorf("ApplyFetched = %+v, %v", next, err)
		}
		next, err = ApplyFetched(active, truth, Observation{EventID: "evt_old", Created: t0})
		if err != nil || !next.EventCreated.Equal(p2.start) {
			t.Errorf("an older trigger lowered event_created: %+v, %v", next, err)
		}
		if _, err := ApplyFetched(active, *snap("dormant", p2), Observation{Created: p2.start}); err == nil {
			t.Error("an undecidable answer from Stripe was applied")
		}
	})
}

// The rule converges at the level of the pure function: for random sets of
// events (state events and events that only name the subscription, with
// many same-second ties), every delivery order, with duplicates, ends in
// Stripe's present state, which is the state of the newest event.
func TestApplyConvergesProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(20, 26))
	statuses := []string{model.SubscriptionIncomplete, model.SubscriptionTrialing, model.SubscriptionActive,
		model.SubscriptionPastDue, model.SubscriptionCanceled, model.SubscriptionUnpaid, model.SubscriptionPaused}
	ignore := cmpopts.IgnoreFields(State{}, "EventCreated", "EventID")
	for c := 0; c < 600; c++ {
		n := 2 + rng.IntN(5)
		evs := make([]Observation, n)
		var truth *Subscription
		var newest time.Time
		for i := range evs {
			created := t0.Add(time.Duration(rng.IntN(4)) * time.Second) // four seconds: ties are common
			evs[i] = Observation{EventID: fmt.Sprintf("evt_%d", i), Created: created}
			if i == 0 || rng.IntN(3) > 0 {
				start := t0.Add(time.Duration(rng.IntN(3)) * 31 * day)
				evs[i].Subscription = snap(statuses[rng.IntN(len(statuses))], period{start, start.Add(31 * day)},
					func(s *Subscription) { s.CancelAtPeriodEnd = rng.IntN(4) == 0 })
				if truth == nil || !created.Before(newest) {
					truth, newest = evs[i].Subscription, created
				}
			}
		}
		want := settle(State{GraceDays: 3}, *truth, newest, "")
		for p := 0; p < 30; p++ {
			order := rng.Perm(n)
			st, fetches := State{GraceDays: 3}, 0
			deliver := func(ev Observation) {
				next, d := Apply(st, ev)
				if d == Refetch {
					fetches++
					var err error
					if next, err = ApplyFetched(st, *truth, ev); err != nil {
						t.Fatal(err)
					}
				}
				st = next
			}
			for _, i := range order {
				deliver(evs[i])
				if rng.IntN(4) == 0 { // a redelivery, now or later
					deliver(evs[order[rng.IntN(len(order))]])
				}
			}
			if diff := cmp.Diff(want, st, ignore); diff != "" {
				t.Fatalf("case %d, order %v: final state (-want +got):\n%s\nevents: %+v", c, order, diff, evs)
			}
		}
	}
}
