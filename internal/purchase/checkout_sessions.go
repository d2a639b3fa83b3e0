package purchase

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/paystream/paystream/model"
)

// sessionStatusOf is the checkout_sessions status a checkout trigger moves a
// session to, or "" when the trigger leaves it alone. Stripe marks a session
// complete when the customer finishes checkout, whether or not an async
// payment is still pending, so both unpaid and paid completions complete it.
// An async payment failure happens after completion and changes nothing here.
func sessionStatusOf(trig Trigger) string {
	switch trig {
	case TriggerPaid, TriggerUnpaid:
		return model.CheckoutComplete
	case TriggerExpired:
		return model.CheckoutExpired
	}
	return ""
}

// MarkCheckoutSession moves the checkout_sessions row of id (a session the
// purchase API created) to status, in the caller's transaction. It is a no-op
// when there is no such row (a session created elsewhere) or when status is
// "". It never moves a session backwards: complete is final, and expired
// only replaces open. Stripe never completes an expired session, but if the
// events say so the completion (money taken) wins.
func MarkCheckoutSession(ctx context.Context, idb bun.IDB, id, status string, at time.Time) error {
	q := idb.NewUpdate().Model((*model.CheckoutSession)(nil)).Where("id = ?", id).Set("status = ?", status).
		Set("updated_at = ?", at.UTC())
	switch status {
	case "":
		return nil
	case model.CheckoutComplete:
		q = q.Set("completed_at = ?", at.UTC()).Where("status <> ?", model.CheckoutComplete)
	case model.CheckoutExpired:
		q = q.Set("expired_at = ?", at.UTC()).Where("status = ?", model.CheckoutOpen)
	default:
		return fmt.Errorf("mark checkout session %s: unknown status %q", id, status)
	}
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("mark checkout session %s %s: %w", id, status, err)
	}
	return nil
}

// markSessionsComplete is MarkCheckoutSession(…, model.CheckoutComplete, at)
// for many sessions in one statement: ids[j] completes at ats[j]. The ids
// must be distinct. Rows that do not exist or are already complete are left
// alone, as one by one.
func markSessionsComplete(ctx context.Context, idb bun.IDB, ids []string, ats []time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	utc := make([]time.Time, len(ats))
	for j, at := range ats {
		utc[j] = at.UTC()
	}
	_, err := idb.ExecContext(ctx, `UPDATE checkout_sessions AS cs
SET status = ?, completed_at = u.at, updated_at = u.at
FROM unnest(?::text[], ?::timestamptz[]) AS u(id, at)
WHERE cs.id = u.id AND cs.status <> ?`,
		model.CheckoutComplete, pgdialect.Array(ids), pgdialect.Array(utc), model.CheckoutComplete)
	if err != nil {
		return fmt.Errorf("mark %d checkout sessions complete: %w", len(ids), err)
	}
	return nil
}
