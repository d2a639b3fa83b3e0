package purchase

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

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
