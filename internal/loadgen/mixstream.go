package loadgen

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/subscription"
	"github.com/paystream/paystream/model"
)

// StreamEvent is one event of a prepared stream (MixedStream): what the
// broker carries, and what the SQL baseline writes for it, decided in
// advance.
type StreamEvent struct {
	ID, Type string
	Created  time.Time // Stripe's created: the subscription's ordering key
	Body     []byte
	Checkout *IDs         // a checkout purchase: the ids the purchase baseline writes
	Member   *memberWrite // a subscription event: its rows
}

// memberWrite is a subscription event's effect as the subscription
// handler's rows show it.
type memberWrite struct {
	sub     *model.Subscription        // the row after the event
	insert  bool                       // the event creates sub (else it updates it)
	invoice *model.SubscriptionInvoice // a paid invoice with its split snapshot; nil: none
	ledger  []ledgerRow                // the invoice's posting
	outbox  string                     // the subscriptions.* kind it announces; "": none
}

// memberSteps is the number of events per subscription in a mixed stream:
// signup (customer.subscription.created, invoice.paid) and one renewal
// (customer.subscription.updated, invoice.paid).
const memberSteps = 4

// MixedRun is a mixed stream and the warm-up it needs.
type MixedRun struct {
	// Warmup creates the subscriptions whose invoices and renewals Events
	// holds (customer.subscription.created of each); it is applied, untimed,
	// before Events.
	Warmup []StreamEvent
	// Events is the measured stream: checkouts and, spread evenly among
	// them, the signup invoice.paid, the renewal's
	// customer.subscription.updated and its invoice.paid of the warm-up's
	// subscriptions, and the customer.subscription.created of as many new
	// ones: the four event types of a membership's signup and renewal in
	// equal numbers.
	Events []StreamEvent
}

// MixedStream is n events of checkout purchases like p's and, share of them
// (0..1), subscription events of the demo creator plan (price planPrice,
// graceDays, pur's organization, creator and agreements). Each
// subscription's events have strictly increasing created times (no tie, so
// the processor never asks Stripe), and no event of Events depends on
// another of Events: an invoice.paid of a subscription paystream has not
// seen waits for it, with retries, which would stall a drain in which any
// invoice overtook its subscription (the processor's workers take batches
// out of order); the subscriptions they name are created by Warmup.
func MixedStream(p *Payloads, pur Purchase, planPrice int64, graceDays, n int, share float64, now time.Time) (MixedRun, error) {
	subs := int(float64(n)*share) / memberSteps
	if share > 0 && subs < 1 {
		return MixedRun{}, fmt.Errorf("loadgen: %d events at share %.2f hold no subscription (%d events each)", n, share, memberSteps)
	}
	var run MixedRun
	var member []StreamEvent
	tag := fmt.Sprintf("%s%04x", p.run, p.streams.Add(1)) // every stream its own subscriptions
	for i := range 2 * subs {
		evs, err := memberEvents(tag, i, pur, planPrice, graceDays, now)
		if err != nil {
			return MixedRun{}, err
		}
		if i < subs { // seen before: the rest of its signup and its renewal
			run.Warmup = append(run.Warmup, evs[0])
			member = append(member, evs[1:]...)
		} else { // new: its creation
			member = append(member, evs[0])
		}
	}
	checkouts := n - len(member)
	run.Events = make([]StreamEvent, 0, n)
	var buf []byte
	for i, m := 0, 0; i < n; i++ {
		if m < len(member) && (checkouts == 0 || (m+1)*n <= (i+1)*len(member)) {
			run.Events = append(run.Events, member[m])
			m++
			continue
		}
		var ids IDs
		buf, ids = p.Next(buf)
		run.Events = append(run.Events, StreamEvent{ID: ids.Event, Type: "checkout.session.completed", Created: now,
			Body: append([]byte(nil), buf...), Checkout: &ids})
	}
	return run, nil
}

// memberEvents are subscription i's four events in their Stripe order, with
// the rows each leaves. Its signup period contains now (it starts 15 days
// before), so no subscription ever shows ended access: the processor's
// sweeper, running beside the drain, would otherwise announce the end of a
// warm-up subscription whose renewal is not applied yet. The renewal's
// events are stamped at the signup period's end, in the future: only their
// order matters to the processor.
func memberEvents(run string, i int, pur Purchase, price int64, graceDays int, now time.Time) ([]StreamEvent, error) {
	tag := fmt.Sprintf("%s%012d", run, i)
	subID, customer := "sub_"+tag, "user_sub_"+tag
	s0 := now.Add(-15 * 24 * time.Hour).Truncate(time.Second)
	e1 := s0.AddDate(0, 1, 0)
	e2 := e1.AddDate(0, 1, 0)
	md := stripefixture.SubscriptionMetadata(customer, demo.CreatorPlanID, pur.OrganizationID.String())
	sub := stripefixture.Subscription{ID: subID, Customer: "cus_" + tag, Status: "active", StartDate: s0,
		Amount: price, Currency: pur.Currency, Interval: "month", Metadata: md}
	invoice := func(seq int, reason string, start, end time.Time) stripefixture.Invoice {
		id := fmt.Sprintf("%s%d", tag, seq)
		return stripefixture.Invoice{ID: "in_" + id, SubscriptionID: subID, Customer: sub.Customer, ChargeID: "ch_" + id,
			PaymentIntentID: "pi_sub_" + id, Amount: price, Currency: pur.Currency, BillingReason: reason,
			PeriodStart: start, PeriodEnd: end, PaidAt: start.Add(time.Second), Metadata: md}
	}
	type step struct {
		typ string
		at  time.Time
		sub stripefixture.Subscription
		inv stripefixture.Invoice
	}
	signup, renewal := sub, sub
	signup.PeriodStart, signup.PeriodEnd = s0, e1
	renewal.PeriodStart, renewal.PeriodEnd = e1, e2
	steps := []step{
		{typ: subscription.TypeSubscriptionCreated, at: s0, sub: signup},
		{typ: subscription.TypeInvoicePaid, at: s0.Add(time.Second), inv: invoice(1, "subscription_create", s0, e1)},
		{typ: subscription.TypeSubscriptionUpdated, at: e1, sub: renewal},
		{typ: subscription.TypeInvoicePaid, at: e1.Add(time.Second), inv: invoice(2, "subscription_cycle", e1, e2)},
	}
	planID := uuid.MustParse(demo.CreatorPlanID)
	state := subscription.State{GraceDays: graceDays}
	var row *model.Subscription
	out := make([]StreamEvent, 0, len(steps))
	for k, st := range steps {
		m := stripefixture.Meta{EventID: fmt.Sprintf("evt_sub_%s%d", tag, k), Created: st.at}
		var body []byte
		var err error
		w := &memberWrite{}
		if st.typ == subscription.TypeInvoicePaid {
			body, err = stripefixture.InvoiceEvent(st.typ, m, st.inv)
			w.sub = row
			w.invoice, w.ledger, err = invoiceRow(err, row, st.inv, pur)
			if st.inv.BillingReason == "subscription_cycle" {
				w.outbox = subscription.EventRenewed
			}
		} else {
			if body, err = stripefixture.SubscriptionEvent(st.typ, m, st.sub); err != nil {
				return nil, err
			}
			ev, derr := subscription.DecodeEvent(body)
			if derr != nil {
				return nil, derr
			}
			next, d := subscription.Apply(state, subscription.Observation{EventID: ev.ID, Created: ev.Created, Subscription: ev.Subscription})
			if d != subscription.Applied {
				return nil, fmt.Errorf("loadgen: %s of %s is %s, not applied: the stream must be decidable", st.typ, subID, d)
			}
			w.insert, w.outbox = !state.Exists, ""
			if !state.Exists {
				w.outbox = subscription.EventStarted
			}
			state = next
			row = subscriptionRow(subID, customer, planID, next)
			w.sub = row
		}
		if err != nil {
			return nil, err
		}
		out = append(out, StreamEvent{ID: m.EventID, Type: st.typ, Created: st.at, Body: body, Member: w})
	}
	return out, nil
}

// subscriptionRow is the subscriptions row of st, as the handler stores it.
func subscriptionRow(id, customer string, plan uuid.UUID, st subscription.State) *model.Subscription {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	r := &model.Subscription{ID: id, CustomerID: customer, PlanID: plan, Status: st.Status,
		CurrentPeriodStart: st.PeriodStart, CurrentPeriodEnd: st.PeriodEnd, CancelAtPeriodEnd: st.CancelAtPeriodEnd,
		CancelAt: opt(st.CancelAt), CanceledAt: opt(st.CanceledAt), EndedAt: opt(st.EndedAt), TrialStart: opt(st.TrialStart),
		TrialEnd: opt(st.TrialEnd), StartedAt: opt(st.StartedAt), PastDueSince: opt(st.PastDueSince),
		AccessUntil: opt(st.AccessUntil), EventCreated: st.EventCreated, LastEventID: st.EventID, Livemode: st.Livemode}
	if st.StripeCustomerID != "" {
		c := st.StripeCustomerID
		r.StripeCustomerID = &c
	}
	return r
}

// invoiceRow is the paid invoice's row with the split the bench's seeded
// agreements give the creator plan, and its ledger posting.
func invoiceRow(err error, sub *model.Subscription, inv stripefixture.Invoice, pur Purchase) (*model.SubscriptionInvoice, []ledgerRow, error) {
	if err != nil {
		return nil, nil, err
	}
	if sub == nil {
		return nil, nil, fmt.Errorf("loadgen: invoice %s before its subscription", inv.ID)
	}
	sp, err := split.Compute(inv.Amount, split.Terms{PlatformBps: benchPlatformBps, OrganizationBps: benchOrgBps})
	if err != nil {
		return nil, nil, err
	}
	creator, reason, charge, pi := pur.CreatorID, inv.BillingReason, inv.ChargeID, inv.PaymentIntentID
	row := &model.SubscriptionInvoice{ID: inv.ID, SubscriptionID: sub.ID, PlanID: sub.PlanID, OrganizationID: pur.OrganizationID,
		CreatorID: &creator, BillingReason: &reason, PeriodStart: inv.PeriodStart, PeriodEnd: inv.PeriodEnd,
		AmountPaidCents: sp.Amount, Currency: inv.Currency, PlatformFeeCents: sp.Platform, OrganizationFeeCents: sp.Organization,
		CreatorPayoutCents: sp.Creator, PlatformFeeBps: sp.PlatformBps, OrganizationFeeBps: sp.OrganizationBps,
		PlatformAgreementID: pur.PlatformAgreement, CreatorOrgAgreementID: pur.CreatorOrg, StripeChargeID: &charge,
		StripePaymentIntentID: &pi, Status: model.InvoicePaid, PaidAt: inv.PaidAt}
	p := pur
	p.Amount, p.PlatformFee, p.OrgFee, p.Creator = sp.Amount, sp.Platform, sp.Organization, sp.Creator
	return row, ledgerRows(p), nil
}
