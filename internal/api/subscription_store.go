package api

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/model"
)

// The reads and writes of the subscription routes. Rows of subscriptions
// are written only by the processor from Stripe's webhooks; the API reads
// them, and writes only its own subscription_checkout_sessions.

// liveStatuses are the statuses in which a customer holds a subscription a
// new checkout would duplicate: trialing and active, and past_due, which
// Stripe is still collecting (a second subscription would charge twice
// once the card works again; the Billing Portal fixes the card instead).
var liveStatuses = []string{model.SubscriptionTrialing, model.SubscriptionActive, model.SubscriptionPastDue}

// endedStatuses are terminal in Stripe: nothing can be cancelled or resumed.
var endedStatuses = map[string]bool{model.SubscriptionCanceled: true, model.SubscriptionIncompleteExpired: true}

// planOnSale returns the plan, or nil when it is unknown or archived.
func planOnSale(ctx context.Context, idb bun.IDB, id uuid.UUID) (*model.SubscriptionPlan, error) {
	var p model.SubscriptionPlan
	return selectOne(ctx, idb.NewSelect().Model(&p).Where("id = ?", id).Where("archived_at IS NULL"), &p, "load plan "+id.String())
}

// liveSubscription returns the customer's newest live subscription to the
// plan (subscriptions_customer_plan_idx), or nil.
func liveSubscription(ctx context.Context, idb bun.IDB, customer string, plan uuid.UUID) (*model.Subscription, error) {
	var s model.Subscription
	return selectOne(ctx, idb.NewSelect().Model(&s).Where("customer_id = ?", customer).Where("plan_id = ?", plan).
		Where("status IN (?)", bun.In(liveStatuses)).OrderExpr("created_at DESC, id DESC").Limit(1),
		&s, fmt.Sprintf("find live subscription of %q to plan %s", customer, plan))
}

// subscriptionWithPlan returns subscription id with its plan, or nil.
func subscriptionWithPlan(ctx context.Context, idb bun.IDB, id string) (*model.Subscription, error) {
	var s model.Subscription
	return selectOne(ctx, idb.NewSelect().Model(&s).Relation("Plan").Where("subscription.id = ?", id), &s, "load subscription "+id)
}

// subscriptionKnown reports whether the processor recorded subscription id.
func subscriptionKnown(ctx context.Context, idb bun.IDB, id string) (bool, error) {
	ok, err := idb.NewSelect().Model((*model.Subscription)(nil)).Where("id = ?", id).Exists(ctx)
	if err != nil {
		return false, fmt.Errorf("find subscription %s: %w", id, err)
	}
	return ok, nil
}

// stripeCustomerOf returns the Stripe customer of the customer's newest
// subscription that names one (subscriptions_customer_created_idx), or "".
// A customer's memberships share it, so the Billing Portal shows them all.
func stripeCustomerOf(ctx context.Context, idb bun.IDB, customer string) (string, error) {
	var id string
	err := idb.NewSelect().Model((*model.Subscription)(nil)).Column("stripe_customer_id").
		Where("customer_id = ?", customer).Where("stripe_customer_id IS NOT NULL").
		OrderExpr("created_at DESC, id DESC").Limit(1).Scan(ctx, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("find the Stripe customer of %q: %w", customer, err)
	}
	return id, nil
}

// openSubscriptionSession returns the newest open session of (customer,
// plan) that expires after notBefore, or nil.
func openSubscriptionSession(ctx context.Context, idb bun.IDB, customer string, plan uuid.UUID, notBefore time.Time) (*model.SubscriptionCheckoutSession, error) {
	var s model.SubscriptionCheckoutSession
	return selectOne(ctx, idb.NewSelect().Model(&s).
		Where("customer_id = ?", customer).Where("plan_id = ?", plan).
		Where("status = ?", model.CheckoutOpen).Where("expires_at > ?", notBefore).
		Order("expires_at DESC").Limit(1), &s, fmt.Sprintf("find open subscription checkout of %q for plan %s", customer, plan))
}

// subscriptionSessionByKey returns the subscription checkout created under
// an Idempotency-Key, or nil.
func subscriptionSessionByKey(ctx context.Context, idb bun.IDB, key string) (*model.SubscriptionCheckoutSession, error) {
	var s model.SubscriptionCheckoutSession
	return selectOne(ctx, idb.NewSelect().Model(&s).Where("idempotency_key = ?", key), &s, "find subscription checkout of idempotency key")
}

// insertSubscriptionSession records a session Stripe created; when the id
// is already recorded (Stripe replayed an idempotent create) it returns the
// stored row.
func insertSubscriptionSession(ctx context.Context, idb bun.IDB, s *model.SubscriptionCheckoutSession) (*model.SubscriptionCheckoutSession, error) {
	return insertOrLoad(ctx, idb, s, s.ID, "subscription checkout session")
}

// closeSubscriptionSession records what Stripe said of an open session:
// complete (with the subscription it created) or expired.
func closeSubscriptionSession(ctx context.Context, idb bun.IDB, id string, st sessionState, now time.Time) error {
	q := idb.NewUpdate().Model((*model.SubscriptionCheckoutSession)(nil)).Where("id = ?", id).
		Where("status = ?", model.CheckoutOpen).Set("status = ?", st.Status).Set("updated_at = ?", now)
	if st.Status == model.CheckoutComplete {
		q = q.Set("completed_at = ?", now)
		if st.SubscriptionID != "" {
			q = q.Set("subscription_id = ?", st.SubscriptionID)
		}
	} else {
		q = q.Set("expired_at = ?", now)
	}
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("record %s subscription checkout session %s: %w", st.Status, id, err)
	}
	return nil
}

// subscriptionPage selects one page of a customer's subscriptions.
type subscriptionPage struct {
	Customer      string
	StartingAfter string // cursor: the last subscription of the previous page; "" for the first
	Limit         int
}

// errSubscriptionCursor: starting_after is not a subscription of the customer.
var errSubscriptionCursor = errors.New("starting_after is not a subscription of this customer")

// listSubscriptions returns up to q.Limit subscriptions with their plans,
// newest first (created_at, then id, both descending: a stable order for
// the cursor, read through subscriptions_customer_created_idx), and
// whether more follow.
func listSubscriptions(ctx context.Context, idb bun.IDB, q subscriptionPage) ([]model.Subscription, bool, error) {
	sel := idb.NewSelect().Model((*model.Subscription)(nil)).Relation("Plan").Where("subscription.customer_id = ?", q.Customer)
	if q.StartingAfter != "" {
		ok, err := idb.NewSelect().Model((*model.Subscription)(nil)).
			Where("id = ?", q.StartingAfter).Where("customer_id = ?", q.Customer).Exists(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("load cursor subscription %s: %w", q.StartingAfter, err)
		}
		if !ok {
			return nil, false, errSubscriptionCursor
		}
		// The cursor's key is read in SQL so its timestamp keeps its full
		// precision.
		sel = sel.Where("(subscription.created_at, subscription.id) < (SELECT c.created_at, c.id FROM subscriptions c WHERE c.id = ?)", q.StartingAfter)
	}
	var subs []model.Subscription
	if err := sel.OrderExpr("subscription.created_at DESC, subscription.id DESC").Limit(int64(q.Limit)+1).Scan(ctx, &subs); err != nil {
		return nil, false, fmt.Errorf("list subscriptions of %q: %w", q.Customer, err)
	}
	more := len(subs) > q.Limit
	if more {
		subs = subs[:q.Limit]
	}
	return subs, more, nil
}
