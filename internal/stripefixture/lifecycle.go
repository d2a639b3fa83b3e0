package stripefixture

import (
	"fmt"
	"time"
)

// Membership is a subscription to one plan whose life MembershipLifecycle
// tells: who pays for what (the metadata contract) and when the story ends.
type Membership struct {
	SubscriptionID string // sub_…; generated when empty
	Customer       string // Stripe customer cus_…; generated when empty
	// CustomerID, PlanID and OrganizationID are paystream's metadata
	// contract (SubscriptionMetadata).
	CustomerID, PlanID, OrganizationID string
	Amount                             int64  // the plan's price per interval, minor units
	Currency                           string // usd when empty
	Interval                           string // month (default) or year
	Now                                time.Time
}

// Step is one event of a story: its type, what it tells, its id and body.
type Step struct {
	Type    string
	What    string
	EventID string
	Body    []byte
}

// MembershipLifecycle returns a membership's life as Stripe reports it, in
// the order Stripe sends it, ending a few minutes before mb.Now: bought
// (created incomplete, the signup invoice paid, checkout completed,
// active), renewed once (a new period, its invoice paid), a renewal that
// fails (the invoice's attempt fails, past_due), recovers (paid, active
// again), is canceled at the period end, and is deleted. Each event is a
// second or more after the one before, so none is a tie, and every event
// decides on its own payload: the processor applies the whole story without
// asking Stripe (`paystream send subscription-lifecycle` in the dev mode,
// which has no Stripe key). It returns the subscription's id with the
// steps.
func MembershipLifecycle(mb Membership) (string, []Step, error) {
	orDefault(&mb.SubscriptionID, NewID("sub_", 24))
	orDefault(&mb.Customer, NewID("cus_", 14))
	orDefault(&mb.Currency, "usd")
	orDefault(&mb.Interval, "month")
	if mb.Interval != "month" && mb.Interval != "year" {
		return "", nil, fmt.Errorf("stripefixture: interval %q is neither month nor year", mb.Interval)
	}
	if mb.Now.IsZero() {
		mb.Now = time.Now()
	}
	next := func(t time.Time) time.Time {
		if mb.Interval == "year" {
			return t.AddDate(1, 0, 0)
		}
		return t.AddDate(0, 1, 0)
	}
	prev := func(t time.Time) time.Time {
		if mb.Interval == "year" {
			return t.AddDate(-1, 0, 0)
		}
		return t.AddDate(0, -1, 0)
	}
	// The current (third) period began ten minutes ago; the story runs from
	// the first period's start to a few minutes ago.
	p3 := mb.Now.Add(-10 * time.Minute).Truncate(time.Second)
	p2 := prev(p3)
	p1 := prev(p2)
	md := SubscriptionMetadata(mb.CustomerID, mb.PlanID, mb.OrganizationID)
	sub := func(status string, start time.Time) Subscription {
		return Subscription{ID: mb.SubscriptionID, Customer: mb.Customer, Status: status, PeriodStart: start,
			PeriodEnd: next(start), StartDate: p1, Amount: mb.Amount, Currency: mb.Currency, Interval: mb.Interval, Metadata: md}
	}
	invoice := func(id, reason string, start time.Time, payment string) Invoice {
		return Invoice{ID: id, SubscriptionID: mb.SubscriptionID, Customer: mb.Customer, ChargeID: "ch_" + payment,
			PaymentIntentID: "pi_" + payment, Amount: mb.Amount, Currency: mb.Currency, BillingReason: reason,
			PeriodStart: start, PeriodEnd: next(start), Metadata: md}
	}
	base := mb.SubscriptionID[len("sub_"):]
	signup, renewal, third := invoice("in_"+base+"1", "subscription_create", p1, base+"1"),
		invoice("in_"+base+"2", "subscription_cycle", p2, base+"2"), invoice("in_"+base+"3", "subscription_cycle", p3, base+"3")
	thirdRetry := third
	thirdRetry.ChargeID, thirdRetry.AttemptCount = "ch_"+base+"3r", 2
	canceled := sub("active", p3)
	canceled.CancelAtPeriodEnd, canceled.CanceledAt = true, p3.Add(180*time.Second)
	canceled.CancelReason = "cancellation_requested"
	deleted := sub("canceled", p3)
	deleted.CanceledAt, deleted.EndedAt, deleted.CancelReason = p3.Add(180*time.Second), p3.Add(240*time.Second), "cancellation_requested"

	type event struct {
		at    time.Time
		typ   string
		what  string
		build func(Meta) ([]byte, error)
	}
	subEvent := func(typ string, s Subscription) func(Meta) ([]byte, error) {
		return func(m Meta) ([]byte, error) { return SubscriptionEvent(typ, m, s) }
	}
	invEvent := func(typ string, inv Invoice) func(Meta) ([]byte, error) {
		return func(m Meta) ([]byte, error) { return InvoiceEvent(typ, m, inv) }
	}
	events := []event{
		{p1, "customer.subscription.created", "signup: the subscription, incomplete until its first invoice is paid",
			subEvent("customer.subscription.created", sub("incomplete", p1))},
		{p1.Add(2 * time.Second), "invoice.paid", "signup: the first invoice paid (split, posted to the ledger)",
			invEvent("invoice.paid", signup)},
		{p1.Add(3 * time.Second), "checkout.session.completed", "signup: the checkout in subscription mode completed",
			func(m Meta) ([]byte, error) {
				return SubscriptionCheckoutEvent(m, SubscriptionCheckout{SubscriptionID: mb.SubscriptionID, Customer: mb.Customer,
					InvoiceID: signup.ID, Amount: mb.Amount, Currency: mb.Currency, Metadata: md})
			}},
		{p1.Add(4 * time.Second), "customer.subscription.updated", "signup: active (subscriptions.started)",
			subEvent("customer.subscription.updated", sub("active", p1))},
		{p2, "customer.subscription.updated", "renewal: the next period opens", subEvent("customer.subscription.updated", sub("active", p2))},
		{p2.Add(2 * time.Second), "invoice.paid", "renewal: paid (subscriptions.renewed)", invEvent("invoice.paid", renewal)},
		{p3, "customer.subscription.updated", "next renewal: the period opens", subEvent("customer.subscription.updated", sub("active", p3))},
		{p3.Add(60 * time.Second), "invoice.payment_failed", "next renewal: the card is declined", invEvent("invoice.payment_failed", third)},
		{p3.Add(61 * time.Second), "customer.subscription.updated", "next renewal: past_due, access kept for the grace days (subscriptions.past_due)",
			subEvent("customer.subscription.updated", sub("past_due", p3))},
		{p3.Add(120 * time.Second), "invoice.paid", "recovery: Stripe's retry is paid (subscriptions.renewed)", invEvent("invoice.paid", thirdRetry)},
		{p3.Add(121 * time.Second), "customer.subscription.updated", "recovery: active again", subEvent("customer.subscription.updated", sub("active", p3))},
		{p3.Add(180 * time.Second), "customer.subscription.updated", "cancel at period end: access kept to the period's end",
			subEvent("customer.subscription.updated", canceled)},
		{p3.Add(240 * time.Second), "customer.subscription.deleted", "deleted: canceled, access ended (subscriptions.canceled, subscriptions.expired)",
			subEvent("customer.subscription.deleted", deleted)},
	}
	steps := make([]Step, len(events))
	for i, e := range events {
		m := Meta{EventID: NewID("evt_", 24), Created: e.at}
		body, err := e.build(m)
		if err != nil {
			return "", nil, err
		}
		steps[i] = Step{Type: e.typ, What: e.what, EventID: m.EventID, Body: body}
	}
	return mb.SubscriptionID, steps, nil
}
