package subscription

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

// sweeper returns a sweeper of the env's database and clock.
func (e *famEnv) sweeper() *Sweeper {
	e.t.Helper()
	s, err := NewSweeper(e.db, Config{Now: e.clock.Now}, e.fam.m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// accessAtNow is CheckAccess of user_42 to content A1 at now.
func (e *famEnv) accessAtNow(now time.Time) Access {
	e.t.Helper()
	a, err := CheckAccess(context.Background(), e.db.DB, fixCustomer, contentA1, now)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// A trial grants access to its end; the trial's invoice of 0 is recorded
// and posted with no money; paying after the trial makes it active to the
// new period's end. started is announced once, at the trial.
func TestTrialBecomesActive(t *testing.T) {
	forEachPath(t, func(t *testing.T, batch bool) {
		bdb := catalogDB(t)
		e := newFamEnv(t, bdb, newFakeStripe(), batch)
		trial := period{t0, t0.Add(14 * day)}
		paid := period{trial.end, trial.end.Add(31 * day)}
		trialing := func(sub map[string]any) {
			sub["status"], sub["trial_start"], sub["trial_end"] = model.SubscriptionTrialing, trial.start.Unix(), trial.end.Unix()
		}
		e.mustDeliver(
			rawEvt(t, shapeNew, TypeSubscriptionCreated, "evt_c", t0, subObj(shapeNew, trial, trialing)),
			rawEvt(t, shapeNew, TypeInvoicePaid, "evt_p0", t0.Add(time.Second), invoiceObj(shapeNew, "in_trial", trial, 0, t0.Add(time.Second), "trial")),
			rawEvt(t, shapeNew, TypeSubscriptionTrialWillEnd, "evt_w", trial.end.Add(-3*day), subObj(shapeNew, trial, trialing)),
		)
		if a := e.accessAtNow(trial.end.Add(-time.Hour)); !a.Active || a.Type != model.AccessSubscription || !a.ExpiresAt.Equal(trial.end) {
			t.Fatalf("in the trial: %+v; want subscription access until the trial's end", a)
		}
		if a := e.accessAtNow(trial.end.Add(time.Second)); a.Active {
			t.Fatalf("after the trial, before it was paid: %+v; want no access", a)
		}
		e.mustDeliver(
			rawEvt(t, shapeNew, TypeSubscriptionUpdated, "evt_u", trial.end, subObj(shapeNew, paid, status(model.SubscriptionActive),
				unixField("trial_start", trial.start), unixField("trial_end", trial.end))),
			rawEvt(t, shapeNew, TypeInvoicePaid, "evt_p1", trial.end.Add(time.Hour), invoiceObj(shapeNew, "in_first", paid, 1000, trial.end.Add(time.Hour), "first")),
		)
		if a := e.accessAtNow(paid.end.Add(-time.Hour)); !a.Active || !a.ExpiresAt.Equal(paid.end) {
			t.Fatalf("after paying: %+v; want access until %s", a, paid.end)
		}
		if kinds := outboxKinds(t, bdb, fixSub); !slices.Equal(kinds, []string{EventStarted, EventRenewed}) {
			t.Fatalf("events %v; want started (the trial) then renewed (the first paid period)", kinds)
		}
		if trialInv := loadInvoice(t, bdb, "in_trial"); trialInv.AmountPaidCents != 0 || trialInv.PlatformFeeCents != 0 {
			t.Fatalf("trial invoice %+v", trialInv)
		}
		mustVerifyLedger(t, bdb)
	})
}

// A subscription whose first payment never succeeds is incomplete, then
// incomplete_expired: it never grants access, announces nothing, and the
// sweeper has nothing to do with it, in every delivery order.
func TestIncompleteThatExpiresNeverGrants(t *testing.T) {
	forEachPath(t, func(t *testing.T, batch bool) {
		bdb := catalogDB(t)
		stripe := newFakeStripe()
		e := newFamEnv(t, bdb, stripe, batch)
		truth := subscriptionBody(t, shapeOld, p1, status(model.SubscriptionIncompleteExpired))
		evs := []stripeevent.Event{
			rawEvt(t, shapeOld, TypeSubscriptionCreated, "evt_c", t0, subObj(shapeOld, p1, status(model.SubscriptionIncomplete))),
			rawEvt(t, shapeOld, TypeInvoicePaymentFailed, "evt_f", t0.Add(time.Second), invoiceObj(shapeOld, "in_1", p1, 0, time.Time{}, "first")),
			rawEvt(t, shapeOld, TypeSubscriptionUpdated, "evt_x", t0.Add(23*time.Hour), subObj(shapeOld, p1, status(model.SubscriptionIncompleteExpired))),
		}
		for n, order := range [][]int{{0, 1, 2}, {2, 0, 1}, {1, 2, 0}} {
			run := make([]stripeevent.Event, len(order))
			for i, j := range order {
				run[i] = stripeEvent(t, renamed(evs[j].Payload, n))
			}
			id := fixSub + "_" + strconv.Itoa(n)
			stripe.set(id, renamed(truth, n)) // an invoice first asks Stripe
			e.mustDeliver(run...)
			s := loadSub(t, bdb, id)
			if s.Status != model.SubscriptionIncompleteExpired || s.AccessUntil != nil || s.ExpiredAt != nil {
				t.Fatalf("order %v: %+v", order, s)
			}
			if kinds := outboxKinds(t, bdb, id); len(kinds) != 0 {
				t.Fatalf("order %v: events %v; want none", order, kinds)
			}
		}
		for _, now := range []time.Time{t0, t0.Add(time.Hour), p1.end.Add(time.Hour)} {
			if a, err := CheckAccess(context.Background(), bdb.DB, fixCustomer, contentA1, now); err != nil || a.Active {
				t.Fatalf("access at %s: %+v, %v", now, a, err)
			}
		}
		if n, err := e.sweeper().Sweep(context.Background()); err != nil || n != 0 {
			t.Fatalf("sweep = %d, %v; want nothing", n, err)
		}
		if got := e.metricOf("paystream_subscription_renewals_total", map[string]string{"currency": "usd", "outcome": "failed"}); got != 0 {
			t.Errorf("a failed first payment counted as a failed renewal: %v", got)
		}
	})
}

// A membership's events, each announced once as a CloudEvent of its kind:
// started, a failed renewal (past_due, the failure counted), recovery
// (renewed), cancel at period end (access until the period end), and the
// sweeper's expired once the period passed; then Stripe's deletion is
// canceled only (the end was announced). A second deletion in another
// subscription, before its period ended, announces canceled and expired
// in the event's transaction.
func TestLifecycleEvents(t *testing.T) {
	forEachPath(t, func(t *testing.T, batch bool) {
		ctx := context.Background()
		bdb := catalogDB(t)
		e := newFamEnv(t, bdb, newFakeStripe(), batch)
		e.clock.Set(t0)
		e.mustDeliver(
			rawEvt(t, shapeOld, TypeSubscriptionCreated, "evt_c", t0, subObj(shapeOld, p1, status(model.SubscriptionActive))),
			rawEvt(t, shapeOld, TypeInvoicePaid, "evt_p1", t0.Add(time.Second), invoiceObj(shapeOld, "in_1", p1, 1000, t0.Add(time.Second), "one")),
		)
		e.clock.Set(p2.start.Add(time.Hour))
		e.mustDeliver(
			rawEvt(t, shapeOld, TypeInvoicePaymentFailed, "evt_f", p2.start.Add(time.Minute), invoiceObj(shapeOld, "in_2", p2, 0, time.Time{}, "two")),
			rawEvt(t, shapeOld, TypeSubscriptionUpdated, "evt_pd", p2.start.Add(2*time.Minute), subObj(shapeOld, p2, status(model.SubscriptionPastDue))),
		)
		if a := e.accessAtNow(p2.start.Add(2 * day)); !a.Active || !a.ExpiresAt.Equal(p2.start.Add(3*day)) {
			t.Fatalf("past_due: %+v; want access for the 3 grace days", a)
		}
		e.clock.Set(p2.start.Add(2 * day))
		e.mustDeliver(
			rawEvt(t, shapeOld, TypeSubscriptionUpdated, "evt_ok", p2.start.Add(2*day), subObj(shapeOld, p2, status(model.SubscriptionActive))),
			rawEvt(t, shapeOld, TypeInvoicePaid, "evt_p2", p2.start.Add(2*day+time.Second), invoiceObj(shapeOld, "in_2", p2, 1000, p2.start.Add(2*day+time.Second), "two")),
			rawEvt(t, shapeOld, TypeSubscriptionUpdated, "evt_cpe", p2.start.Add(3*day), subObj(shapeOld, p2, status(model.SubscriptionActive), cancelAtPeriodEnd(true))),
		)
		if a := e.accessAtNow(p2.end.Add(-time.Minute)); !a.Active || !a.ExpiresAt.Equal(p2.end) {
			t.Fatalf("cancel at period end: %+v; want access until the period end", a)
		}
		// Two sweepers before the end announce nothing; after it, once.
		if n, err := e.sweeper().Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("sweep before the end = %d, %v", n, err)
		}
		e.clock.Set(p2.end.Add(time.Second))
		var wg sync.WaitGroup
		counts := make([]int, 4)
		for i := range counts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := e.sweeper().Sweep(ctx)
				if err != nil {
					t.Error(err)
				}
				counts[i] = n
			}()
		}
		wg.Wait()
		if total := counts[0] + counts[1] + counts[2] + counts[3]; total != 1 {
			t.Fatalf("concurrent sweeps announced %v; want one in all", counts)
		}
		// Stripe deletes it at the period end: canceled, the end already announced.
		e.mustDeliver(rawEvt(t, shapeOld, TypeSubscriptionDeleted, "evt_del", p2.end, subObj(shapeOld, p2,
			status(model.SubscriptionCanceled), unixField("canceled_at", p2.start.Add(3*day)), unixField("ended_at", p2.end))))
		want := []string{EventStarted, EventPastDue, EventRenewed, EventExpired, EventCanceled}
		if kinds := outboxKinds(t, bdb, fixSub); !slices.Equal(kinds, want) {
			t.Fatalf("events %v; want %v", kinds, want)
		}
		// The envelope of one of them.
		var row model.Outbox
		if err := bdb.NewSelect().Model(&row).Where("subject = ?", Subject(EventExpired)).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		var ce streams.CloudEvent[EventData]
		if err := json.Unmarshal(row.Payload, &ce); err != nil {
			t.Fatal(err)
		}
		if ce.Type != "com.paystream.subscription.expired.v1" || ce.Subject != AggregateID(fixSub).String() ||
			ce.SpecVersion != "1.0" || ce.Data.SubscriptionID != fixSub || ce.Data.CustomerID != fixCustomer ||
			ce.Data.Reason != EndCanceled || ce.Data.Plan.Interval != model.IntervalMonth || ce.Data.CreatorID != "cr_A" ||
			ce.Data.AccessUntil == nil || !ce.Data.AccessUntil.Equal(p2.end) || ce.ID != row.ID.String() {
			t.Fatalf("expired event %+v", ce)
		}

		// Deleted mid-period: canceled and expired in the event's transaction.
		other := "sub_1QOtherMembership000001"
		e.clock.Set(t0)
		e.mustDeliver(rawEvt(t, shapeOld, TypeSubscriptionCreated, "evt_c2", t0, subObj(shapeOld, p1, subID(other), status(model.SubscriptionActive))))
		e.clock.Set(t0.Add(5 * day))
		e.mustDeliver(rawEvt(t, shapeOld, TypeSubscriptionDeleted, "evt_d2", t0.Add(5*day), subObj(shapeOld, p1, subID(other),
			status(model.SubscriptionCanceled), unixField("canceled_at", t0.Add(5*day)), unixField("ended_at", t0.Add(5*day)))))
		if kinds := outboxKinds(t, bdb, other); !slices.Equal(kinds, []string{EventStarted, EventCanceled, EventExpired}) {
			t.Fatalf("deleted mid-period: events %v", kinds)
		}
		if s := loadSub(t, bdb, other); s.ExpiredAt == nil {
			t.Fatalf("deleted mid-period: expired_at not set: %+v", s)
		}
		if n, err := e.sweeper().Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("sweep after the deletion = %d, %v; want nothing more", n, err)
		}
		for _, c := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"paystream_subscription_renewals_total", map[string]string{"currency": "usd", "outcome": "failed"}, 1},
			{"paystream_subscription_renewals_total", map[string]string{"currency": "usd", "outcome": "paid"}, 1},
			{"paystream_subscription_churn_total", map[string]string{"kind": EventCanceled, "reason": "cancellation_requested"}, 2},
			{"paystream_subscription_churn_total", map[string]string{"kind": EventExpired, "reason": EndCanceled}, 2},
			{"paystream_subscription_events_total", map[string]string{"kind": EventStarted}, 2},
		} {
			if got := e.metricOf(c.name, c.labels); got != c.want {
				t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
			}
		}
	})
}

// Access granted again after its end was announced (a past_due membership
// whose grace ran out, then paid) is a new grant: its end is announced in
// turn.
func TestRecoveryAfterExpiryIsAnnouncedAgain(t *testing.T) {
	forEachPath(t, func(t *testing.T, batch bool) {
		ctx := context.Background()
		bdb := catalogDB(t)
		e := newFamEnv(t, bdb, newFakeStripe(), batch)
		e.clock.Set(p2.start)
		e.mustDeliver(rawEvt(t, shapeOld, TypeSubscriptionUpdated, "evt_pd", p2.start, subObj(shapeOld, p2, status(model.SubscriptionPastDue))))
		e.clock.Set(p2.start.Add(4 * day)) // grace (3 days) over
		if n, err := e.sweeper().Sweep(ctx); err != nil || n != 1 {
			t.Fatalf("sweep after the grace = %d, %v; want 1", n, err)
		}
		e.mustDeliver(rawEvt(t, shapeOld, TypeSubscriptionUpdated, "evt_ok", p2.start.Add(4*day), subObj(shapeOld, p2, status(model.SubscriptionActive))))
		if s := loadSub(t, bdb, fixSub); s.ExpiredAt != nil {
			t.Fatalf("recovered: expired_at %v; want NULL (a new grant)", s.ExpiredAt)
		}
		e.clock.Set(p2.end.Add(time.Minute))
		if n, err := e.sweeper().Sweep(ctx); err != nil || n != 1 {
			t.Fatalf("sweep after the period = %d, %v; want 1", n, err)
		}
		if kinds := outboxKinds(t, bdb, fixSub); !slices.Equal(kinds, []string{EventStarted, EventPastDue, EventExpired, EventExpired}) {
			t.Fatalf("events %v", kinds)
		}
	})
}

// The gauges count subscriptions granting access by plan currency, interval
// and status, and the monthly list price of the paying ones.
func TestGauges(t *testing.T) {
	ctx := context.Background()
	bdb := catalogDB(t)
	e := newFamEnv(t, bdb, newFakeStripe(), false)
	yearly := uuid.New()
	if _, err := bdb.ExecContext(ctx, `INSERT INTO subscription_plans (id, organization_id, creator_id, name, price_cents, currency, interval)
		VALUES (?, ?, 'cr_A', 'A yearly', 12000, 'eur', 'year')`, yearly, orgID); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(t0.Add(day))
	e.mustDeliver(
		rawEvt(t, shapeOld, TypeSubscriptionCreated, "evt_1", t0, subObj(shapeOld, p1, subID("sub_g1"), status(model.SubscriptionActive))),
		rawEvt(t, shapeOld, TypeSubscriptionCreated, "evt_2", t0, subObj(shapeOld, p1, subID("sub_g2"), status(model.SubscriptionPastDue))),
		rawEvt(t, shapeOld, TypeSubscriptionCreated, "evt_3", t0, subObj(shapeOld, p1, subID("sub_g3"), status(model.SubscriptionTrialing))),
		rawEvt(t, shapeOld, TypeSubscriptionCreated, "evt_4", t0, subObj(shapeOld, p1, subID("sub_g4"), status(model.SubscriptionActive), link("user_y", yearly))),
		rawEvt(t, shapeOld, TypeSubscriptionCreated, "evt_5", t0, subObj(shapeOld, p1, subID("sub_g5"), status(model.SubscriptionCanceled))),
	)
	s := e.sweeper()
	if err := s.refreshGauges(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"paystream_subscriptions_active", map[string]string{"currency": "usd", "interval": "month", "status": "active"}, 1},
		{"paystream_subscriptions_active", map[string]string{"currency": "usd", "interval": "month", "status": "past_due"}, 1},
		{"paystream_subscriptions_active", map[string]string{"currency": "usd", "interval": "month", "status": "trialing"}, 1},
		{"paystream_subscriptions_active", map[string]string{"currency": "eur", "interval": "year", "status": "active"}, 1},
		{"paystream_subscription_mrr_minor_units", map[string]string{"currency": "usd"}, 2000}, // active + past_due at 1000 a month
		{"paystream_subscription_mrr_minor_units", map[string]string{"currency": "eur"}, 1000}, // 12000 a year
		{"paystream_subscription_expiry_backlog_seconds", nil, 0},
	} {
		if got := e.metricOf(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Past the period, nothing grants: the gauges drop to 0 and the
	// unannounced ends are a backlog until a sweep.
	e.clock.Set(p1.end.Add(time.Hour))
	s.gauges.at = time.Time{}
	if err := s.refreshGauges(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.metricOf("paystream_subscriptions_active", map[string]string{"currency": "usd", "interval": "month", "status": "active"}); got != 0 {
		t.Errorf("active after the period = %v, want 0", got)
	}
	if got := e.metricOf("paystream_subscription_expiry_backlog_seconds", nil); got < 3600 {
		t.Errorf("backlog = %v, want at least an hour", got)
	}
}

// The story `paystream send subscription-lifecycle` tells applies, on both
// paths, without ever asking Stripe (the dev mode has no key): bought,
// renewed, failing, recovering, canceled at the period end, deleted.
func TestMembershipLifecycleNeedsNoRefetch(t *testing.T) {
	forEachPath(t, func(t *testing.T, batch bool) {
		bdb := catalogDB(t)
		e := newFamEnv(t, bdb, fetcherFor(t, "", "", time.Second), batch) // no key: any refetch is a dead letter
		now := time.Now()
		e.clock.Set(now)
		sub, steps, err := stripefixture.MembershipLifecycle(stripefixture.Membership{CustomerID: fixCustomer,
			PlanID: planA.String(), OrganizationID: orgID.String(), Amount: 1000, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		for i, st := range steps {
			e.mustDeliver(stripeEvent(t, st.Body))
			if st.Type == "customer.subscription.updated" && i == 11 { // canceled at the period end
				if a := e.accessAtNow(now); !a.Active || a.Subscription == nil || a.Subscription.ID != sub {
					t.Fatalf("canceled at period end: %+v; want access until the period end", a)
				}
			}
		}
		s := loadSub(t, bdb, sub)
		if s.Status != model.SubscriptionCanceled || s.AccessUntil != nil || s.ExpiredAt == nil {
			t.Fatalf("after the story: %+v", s)
		}
		want := []string{EventStarted, EventRenewed, EventPastDue, EventRenewed, EventCanceled, EventExpired}
		if kinds := outboxKinds(t, bdb, sub); !slices.Equal(kinds, want) {
			t.Fatalf("events %v; want %v", kinds, want)
		}
		if n := countRows(t, bdb, "subscription_invoices"); n != 3 {
			t.Fatalf("%d invoices, want 3", n)
		}
		mustVerifyLedger(t, bdb)
		if a := e.accessAtNow(now); a.Active {
			t.Fatalf("after the deletion: %+v; want no access", a)
		}
	})
}

// A membership that had access and was deleted ends announced (expired_at
// set, subscriptions.expired once) in every delivery order, also when the
// deletion is the first event paystream sees of it: every later, older
// event is overtaken, so the row is created already ended.
func TestDeletedFirstStillAnnouncesTheEnd(t *testing.T) {
	forEachPath(t, func(t *testing.T, batch bool) {
		bdb := catalogDB(t)
		stripe := newFakeStripe()
		e := newFamEnv(t, bdb, stripe, batch)
		end := t0.Add(5 * day)
		evs := []stripeevent.Event{
			rawEvt(t, shapeOld, TypeSubscriptionCreated, "evt_c", t0, subObj(shapeOld, p1, status(model.SubscriptionIncomplete))),
			rawEvt(t, shapeOld, TypeSubscriptionUpdated, "evt_a", t0.Add(time.Minute), subObj(shapeOld, p1, status(model.SubscriptionActive))),
			rawEvt(t, shapeOld, TypeSubscriptionDeleted, "evt_d", end, subObj(shapeOld, p1, status(model.SubscriptionCanceled),
				unixField("canceled_at", end), unixField("ended_at", end))),
		}
		permutations(len(evs), func(order []int) {
			n := order[0]*100 + order[1]*10 + order[2]
			run := make([]stripeevent.Event, len(order))
			for i, j := range order {
				run[i] = stripeEvent(t, renamed(evs[j].Payload, n))
			}
			id := fixSub + "_" + strconv.Itoa(n)
			for _, ev := range run {
				e.mustDeliver(ev)
			}
			s := loadSub(t, bdb, id)
			if s.Status != model.SubscriptionCanceled || s.AccessUntil != nil || s.ExpiredAt == nil {
				t.Fatalf("order %v: %+v; want canceled, no access, its end announced", order, s)
			}
			kinds := outboxKinds(t, bdb, id)
			if c := slices.Index(kinds, EventCanceled); c < 0 || slices.Index(kinds, EventExpired) < 0 ||
				len(slices.DeleteFunc(slices.Clone(kinds), func(k string) bool { return k != EventExpired })) != 1 {
				t.Fatalf("order %v: events %v; want canceled and expired once", order, kinds)
			}
		})
		if n, err := e.sweeper().Sweep(context.Background()); err != nil || n != 0 {
			t.Fatalf("sweep = %d, %v; want nothing left to announce", n, err)
		}
	})
}
