package subscription

import (
	"fmt"
	"time"

	"github.com/paystream/paystream/model"
)

// State is what paystream stores of a subscription, as a value: the
// ordering rule and the access rule work on it without a database. It is
// the Facts of the newest event applied, the access they grant, and which
// event that was. Zero times are absent (NULL).
type State struct {
	Exists bool // false: no row yet
	Facts
	PastDueSince time.Time
	AccessUntil  time.Time // zero: no access
	GraceDays    int       // the plan's; events never change it
	EventCreated time.Time // created of the newest event applied
	EventID      string    // that event's id
}

// Observation is what one event says about a subscription.
type Observation struct {
	EventID string
	Created time.Time
	// Subscription is the subscription as the event shows it; nil when the
	// event only names it (invoice, checkout session), which says nothing of
	// its state.
	Subscription *Subscription
}

// Decision is what Apply decided.
type Decision int

// Decisions of Apply.
const (
	Applied   Decision = iota + 1 // next is the payload's state; store it
	Stale                         // older than the newest applied event; current kept
	Refetch                       // a tie or an undecidable payload: fetch and ApplyFetched
	Duplicate                     // this very event was the last applied
	Unchanged                     // the event shows no state and the row exists; current kept
)

func (d Decision) String() string {
	switch d {
	case Applied:
		return "applied"
	case Stale:
		return "stale"
	case Refetch:
		return "refetch"
	case Duplicate:
		return "duplicate"
	case Unchanged:
		return "unchanged"
	}
	return fmt.Sprintf("Decision(%d)", int(d))
}

// Apply is the ordering rule. Stripe does not order events and stamps them
// to the second, so:
//   - an event older (created) than the newest applied one never overwrites
//     it (a late customer.subscription.created saying incomplete cannot undo
//     active);
//   - a newer event's payload is the state as of that event, and is applied;
//   - on a tie (same second: two changes whose order Stripe does not tell)
//     or when the payload cannot decide (no row yet and no state in the
//     event, an unknown status, no period), the answer is Refetch: fetch the
//     subscription from Stripe, which knows its present state, and apply
//     that with ApplyFetched.
//
// Every delivery order of a set of events then ends in the state of the
// newest of them, or in Stripe's present state where a tie was seen.
// cur.GraceDays must hold the plan's grace days; next keeps them.
func Apply(cur State, ev Observation) (next State, d Decision) {
	if cur.Exists && ev.EventID != "" && ev.EventID == cur.EventID {
		return cur, Duplicate
	}
	s := ev.Subscription
	switch {
	case !cur.Exists:
		if s == nil || !s.decidable() {
			return cur, Refetch
		}
	case s == nil:
		return cur, Unchanged
	case ev.Created.Before(cur.EventCreated):
		return cur, Stale
	case ev.Created.Equal(cur.EventCreated), !s.decidable():
		return cur, Refetch
	}
	return settle(cur, *s, ev.Created, ev.EventID), Applied
}

// ApplyFetched applies truth, the subscription as Stripe answered a fetch
// Apply asked for because of ev. Stripe's present state is at least as new
// as ev, so the stored event time becomes ev's unless a newer one was
// already applied: an event older than that is then stale, as it should be.
func ApplyFetched(cur State, truth Subscription, ev Observation) (State, error) {
	if !truth.decidable() {
		return cur, fmt.Errorf("subscription %s as Stripe answered has status %q and period %s–%s; cannot apply it",
			truth.ID, truth.Status, truth.PeriodStart.Format(time.RFC3339), truth.PeriodEnd.Format(time.RFC3339))
	}
	created := ev.Created
	if cur.EventCreated.After(created) {
		created = cur.EventCreated
	}
	return settle(cur, truth, created, ev.EventID), nil
}

// settle is the state s shows, stamped with the event that brought it.
func settle(cur State, s Subscription, created time.Time, eventID string) State {
	next := State{Exists: true, Facts: s.Facts, GraceDays: cur.GraceDays, EventCreated: created, EventID: eventID}
	if next.StripeCustomerID == "" {
		next.StripeCustomerID = cur.StripeCustomerID
	}
	if s.Status == model.SubscriptionPastDue {
		next.PastDueSince = pastDueSince(s)
	}
	next.AccessUntil = AccessUntil(next)
	return next
}

// pastDueSince is when a past_due subscription fell behind: the start of
// its current period. Stripe renews a subscription by opening the next
// period and charging its invoice right then, so the grace counts from the
// renewal whose charge failed. It is read from the payload, never from when
// paystream saw the change, so every delivery order stores the same value.
// (A mid-period invoice that fails, a proration, counts from the period
// start too: a shorter grace, the price of an order-free value.)
func pastDueSince(s Subscription) time.Time { return s.PeriodStart }
