package subscription

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/model"
)

// Result is the stripe_events outcome of an event.
type Result string

// Results, as stripe_events.outcome names them.
const (
	ResultApplied   Result = "applied"   // something was written
	ResultDuplicate Result = "duplicate" // already applied; nothing changed
	ResultIgnored   Result = "ignored"   // not paystream's (no metadata contract)
	ResultRecorded  Result = "recorded"  // kept for the record; changes nothing (stale, a failed attempt)
)

// Outcome is what Handle did, for the stripe_events row, the outbox events
// and the metrics.
type Outcome struct {
	Result         Result
	Decision       Decision // of the ordering rule; 0 when no subscription was involved
	Refetched      bool     // Stripe was asked
	SubscriptionID string
	Before         *model.Subscription // nil when this event created the row
	After          *model.Subscription // as written; nil when the subscription is not paystream's
	Invoice        *model.SubscriptionInvoice
	InvoiceCreated bool   // the invoice was recorded by this event
	AccessEnded    bool   // this event took access away: announce it (expiry.go)
	RefundDelta    int64  // money this event refunded (cumulative amounts never count twice)
	Note           string // why nothing changed, for the stripe_events row
}

// Store writes the family's events. Its methods take bun.IDB, so they run
// inside the processor's event transaction with its stripe_events row and
// outbox rows.
type Store struct {
	fetcher Fetcher
	now     func() time.Time
}

// NewStore returns a Store asking f when the ordering rule needs Stripe's
// present state; now stamps updated_at (nil: time.Now).
func NewStore(f Fetcher, now func() time.Time) (*Store, error) {
	if f == nil {
		return nil, errors.New("subscription: NewStore needs a Fetcher")
	}
	if now == nil {
		now = time.Now
	}
	return &Store{fetcher: f, now: now}, nil
}

// Handle applies one decoded event. Errors are classified (internal/fault):
// a malformed or contradictory payload is permanent, Stripe or the database
// unreachable is transient, and a refund or dispute of a charge that pays no
// known invoice is ErrInvoiceNotFound (the processor tries purchases, then
// waits).
func (s *Store) Handle(ctx context.Context, idb bun.IDB, ev Event) (Outcome, error) {
	obs := Observation{EventID: ev.ID, Created: ev.Created}
	switch {
	case ev.Kind == KindSubscription && ev.Subscription != nil:
		obs.Subscription = ev.Subscription
		return s.sync(ctx, idb, ev.Subscription.ID, obs, nil)
	case ev.Kind == KindCheckout && ev.Checkout != nil:
		return s.sync(ctx, idb, ev.Checkout.SubscriptionID, obs, ev.Checkout.Metadata)
	case (ev.Kind == KindInvoicePaid || ev.Kind == KindInvoiceFailed) && ev.Invoice != nil:
		return s.invoiceEvent(ctx, idb, ev, obs)
	case ev.Kind == KindInvoicePayment && ev.InvoicePayment != nil:
		return s.invoicePayment(ctx, idb, ev)
	case ev.Kind == KindRefund && ev.Refund != nil:
		return s.refund(ctx, idb, ev)
	case ev.Kind == KindDispute && ev.Dispute != nil:
		return s.dispute(ctx, idb, ev)
	}
	return Outcome{}, fmt.Errorf("subscription: event %s of kind %d carries no object", ev.ID, ev.Kind)
}

// sync brings subscription id in line with obs under the ordering rule.
// eventMeta is the metadata the event carries besides the subscription's
// own (a checkout session's, an invoice's snapshot), used when the
// subscription is new. Two transactions may create the same row at once:
// the loser finds it on its second pass.
func (s *Store) sync(ctx context.Context, idb bun.IDB, id string, obs Observation, eventMeta map[string]string) (Outcome, error) {
	if id == "" {
		return Outcome{}, fault.New(fault.Invalid, "invalid_payload", "event %s names no subscription", obs.EventID)
	}
	for pass := 0; ; pass++ {
		row, err := lockSubscription(ctx, idb, id)
		if err != nil {
			return Outcome{}, err
		}
		if row != nil {
			return s.update(ctx, idb, row, obs)
		}
		out, created, err := s.create(ctx, idb, id, obs, eventMeta)
		if err != nil || created || out.Result == ResultIgnored {
			return out, err
		}
		if pass > 0 {
			return Outcome{}, fault.New(fault.Unavailable, "subscription_contended",
				"subscription %s: created concurrently and still not found", id)
		}
	}
}

// update applies obs to the locked row.
func (s *Store) update(ctx context.Context, idb bun.IDB, row *model.Subscription, obs Observation) (Outcome, error) {
	before := *row
	cur := stateOf(row)
	next, d := Apply(cur, obs)
	out := Outcome{Decision: d, SubscriptionID: row.ID, Before: &before, After: row}
	switch d {
	case Duplicate:
		out.Result, out.Note = ResultDuplicate, "event already applied to subscription "+row.ID
		return out, nil
	case Stale:
		out.Result = ResultRecorded
		out.Note = fmt.Sprintf("older than the event applied to subscription %s (%s < %s)",
			row.ID, obs.Created.Format(time.RFC3339), cur.EventCreated.Format(time.RFC3339))
		return out, nil
	case Unchanged:
		out.Result = ResultRecorded
		return out, nil
	case Refetch:
		truth, err := fetch(ctx, s.fetcher, row.ID)
		if err != nil {
			return Outcome{}, err
		}
		if next, err = ApplyFetched(cur, *truth, obs); err != nil {
			return Outcome{}, fault.Wrap(err, fault.Invalid, "stripe_subscription_undecidable", "event "+obs.EventID)
		}
		out.Refetched = true
	}
	setState(row, next)
	row.UpdatedAt = s.now().UTC()
	out.AccessEnded = settleExpiry(&before, row, row.UpdatedAt)
	if _, err := idb.NewUpdate().Model(row).ExcludeColumn("id", "customer_id", "plan_id", "created_at").
		WherePK().Exec(ctx); err != nil {
		return Outcome{}, fmt.Errorf("update subscription %s: %w", row.ID, err)
	}
	out.Result = ResultApplied
	return out, nil
}

// create inserts the row of a subscription seen for the first time, from
// the payload when it decides, else from Stripe. created is false when
// another transaction inserted it first.
func (s *Store) create(ctx context.Context, idb bun.IDB, id string, obs Observation, eventMeta map[string]string) (Outcome, bool, error) {
	ignored := Outcome{Result: ResultIgnored, SubscriptionID: id,
		Note: "subscription " + id + " carries no paystream metadata (customerId, planId, organizationId)"}
	snap := obs.Subscription
	// A subscription sold by something else on the account: say so without
	// asking Stripe when the event's own metadata already tells.
	meta := eventMeta
	if snap != nil {
		meta = snap.Metadata
	}
	if meta != nil {
		if _, ok, err := parseLink("subscription "+id, meta); err == nil && !ok {
			return ignored, false, nil
		}
	}
	d := Applied
	if snap == nil || !snap.decidable() {
		truth, err := fetch(ctx, s.fetcher, id)
		if snap == nil && fault.ReasonOf(err) == ReasonRefetchUnconfigured {
			// An invoice or checkout overtook every event of its
			// subscription and Stripe cannot be asked: the subscription's
			// own event settles it too, so wait for that one.
			return Outcome{}, false, fault.New(fault.Pending, "subscription_not_found",
				"event %s names subscription %s, of which no event was applied yet, and without STRIPE_SECRET_KEY the processor cannot ask Stripe; retrying until the subscription's own event is applied",
				obs.EventID, id)
		}
		if err != nil {
			return Outcome{}, false, err
		}
		snap, d = truth, Refetch
	}
	link, ok, err := parseLink("subscription "+id, snap.Metadata)
	if err == nil && !ok && eventMeta != nil {
		link, ok, err = parseLink("the event of subscription "+id, eventMeta)
	}
	if err != nil {
		return Outcome{}, false, err
	}
	if !ok {
		return ignored, false, nil
	}
	plan, err := loadPlan(ctx, idb, link)
	if err != nil {
		return Outcome{}, false, err
	}
	cur := State{GraceDays: plan.GraceDays}
	var next State
	if d == Applied {
		next, _ = Apply(cur, obs)
	} else if next, err = ApplyFetched(cur, *snap, obs); err != nil {
		return Outcome{}, false, fault.Wrap(err, fault.Invalid, "stripe_subscription_undecidable", "event "+obs.EventID)
	}
	now := s.now().UTC()
	row := &model.Subscription{ID: id, CustomerID: link.CustomerID, PlanID: plan.ID, CreatedAt: now, UpdatedAt: now, Plan: plan}
	setState(row, next)
	ended := settleExpiry(nil, row, now)
	res, err := idb.NewInsert().Model(row).On("CONFLICT (id) DO NOTHING").Exec(ctx)
	if err != nil {
		return Outcome{}, false, fmt.Errorf("insert subscription %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return Outcome{}, false, err
	}
	return Outcome{Result: ResultApplied, Decision: d, Refetched: d == Refetch, SubscriptionID: id, After: row, AccessEnded: ended}, true, nil
}

// lockSubscription returns subscription id with its plan, locked for the
// transaction, or nil when there is none.
func lockSubscription(ctx context.Context, idb bun.IDB, id string) (*model.Subscription, error) {
	var row model.Subscription
	err := idb.NewSelect().Model(&row).Relation("Plan").Where("?TableAlias.id = ?", id).
		For("UPDATE OF ?TableAlias").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lock subscription %s: %w", id, err)
	}
	return &row, nil
}

// loadPlan returns the plan the metadata names, checked against its
// organization. Archived plans still count: the subscription was sold
// before.
func loadPlan(ctx context.Context, idb bun.IDB, l contract) (*model.SubscriptionPlan, error) {
	var p model.SubscriptionPlan
	err := idb.NewSelect().Model(&p).Where("id = ?", l.PlanID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fault.New(fault.NotFound, "unknown_plan", "metadata %s=%s names no subscription plan", MetaPlanID, l.PlanID)
	}
	if err != nil {
		return nil, fmt.Errorf("load subscription plan %s: %w", l.PlanID, err)
	}
	if p.OrganizationID != l.OrganizationID {
		return nil, fault.New(fault.Invalid, "organization_mismatch",
			"metadata %s=%s but plan %s belongs to organization %s", MetaOrganizationID, l.OrganizationID, p.ID, p.OrganizationID)
	}
	return &p, nil
}

// stateOf is the State of a stored row.
func stateOf(r *model.Subscription) State {
	st := State{
		Exists: true,
		Facts: Facts{
			Status: r.Status, PeriodStart: r.CurrentPeriodStart.UTC(), PeriodEnd: r.CurrentPeriodEnd.UTC(),
			CancelAtPeriodEnd: r.CancelAtPeriodEnd, CancelAt: val(r.CancelAt), CanceledAt: val(r.CanceledAt),
			EndedAt: val(r.EndedAt), TrialStart: val(r.TrialStart), TrialEnd: val(r.TrialEnd), StartedAt: val(r.StartedAt),
			Livemode: r.Livemode,
		},
		PastDueSince: val(r.PastDueSince), AccessUntil: val(r.AccessUntil), EventCreated: r.EventCreated.UTC(),
		EventID: r.LastEventID,
	}
	if r.StripeCustomerID != nil {
		st.StripeCustomerID = *r.StripeCustomerID
	}
	if r.Plan != nil {
		st.GraceDays = r.Plan.GraceDays
	}
	return st
}

// setState writes st onto r (identity, plan and timestamps stay).
func setState(r *model.Subscription, st State) {
	r.Status, r.CurrentPeriodStart, r.CurrentPeriodEnd = st.Status, st.PeriodStart, st.PeriodEnd
	r.CancelAtPeriodEnd, r.CancelAt, r.CanceledAt = st.CancelAtPeriodEnd, ptr(st.CancelAt), ptr(st.CanceledAt)
	r.EndedAt, r.TrialStart, r.TrialEnd, r.StartedAt = ptr(st.EndedAt), ptr(st.TrialStart), ptr(st.TrialEnd), ptr(st.StartedAt)
	r.PastDueSince, r.AccessUntil = ptr(st.PastDueSince), ptr(st.AccessUntil)
	r.EventCreated, r.LastEventID, r.Livemode = st.EventCreated, st.EventID, st.Livemode
	r.StripeCustomerID = nil
	if st.StripeCustomerID != "" {
		c := st.StripeCustomerID
		r.StripeCustomerID = &c
	}
}

func val(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func ptr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// planScope returns the plan's creator, "" for an organization plan.
func planScope(p *model.SubscriptionPlan) (uuid.UUID, string) {
	if p.CreatorID == nil {
		return p.OrganizationID, ""
	}
	return p.OrganizationID, *p.CreatorID
}
