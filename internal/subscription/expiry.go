package subscription

import (
	"time"

	"github.com/paystream/paystream/model"
)

// The end of a subscription's access is announced once (subscriptions.expired),
// and expired_at records that it was:
//
//   - an event that takes access away (access_until from set to NULL:
//     canceled, unpaid, paused, …) announces it in its own transaction;
//   - access that runs out (access_until passes) is announced by the
//     sweeper (Sweeper), which finds it through subscriptions_expiry_due_idx;
//   - access granted again after the announcement, beyond it (a past_due
//     subscription that recovers after its grace, a resumed one), is a new
//     grant whose end will be announced in turn: expired_at returns to NULL;
//   - a subscription that reaches an end Stripe gives only to one that
//     granted access (canceled, unpaid, paused) is announced by that event
//     even when paystream never saw the access: its deletion overtook the
//     events that granted it (first seen canceled, or incomplete then
//     canceled), which are then never applied; so every delivery order ends
//     announced once. incomplete_expired never granted access and
//     announces nothing.
//
// The processor and the sweeper both change expired_at only under the
// subscription's row lock, so an end is never announced twice.

// settleExpiry sets row.ExpiredAt after an event changed the subscription
// from before (nil: the event created it) to row, at now, and reports
// whether the event itself ended access, to be announced in its
// transaction.
func settleExpiry(before, row *model.Subscription, now time.Time) (ended bool) {
	switch {
	case before == nil:
		row.ExpiredAt = nil
	case row.AccessUntil != nil && before.ExpiredAt != nil && row.AccessUntil.After(*before.ExpiredAt):
		row.ExpiredAt = nil
		return false
	}
	hadAccess := before != nil && before.AccessUntil != nil
	if row.AccessUntil == nil && row.ExpiredAt == nil && (hadAccess || endedAfterAccess(row.Status)) {
		at := now.UTC()
		row.ExpiredAt = &at
		return true
	}
	return false
}

// endedAfterAccess reports whether status is an end Stripe reaches only
// from a subscription that granted access: canceled (from trialing,
// active or past_due), unpaid (after past_due), paused (a trial that
// ended without a payment method).
func endedAfterAccess(status string) bool {
	switch status {
	case model.SubscriptionCanceled, model.SubscriptionUnpaid, model.SubscriptionPaused:
		return true
	}
	return false
}

// Reasons an access ended, for subscriptions.expired and the churn metric:
// a small fixed set, whatever Stripe adds.
const (
	EndCanceled    = "canceled"     // canceled, now or at the period end (cancel_at_period_end, cancel_at)
	EndGraceEnded  = "grace_ended"  // past_due past its grace days
	EndUnpaid      = "unpaid"       // Stripe gave up retrying and keeps it open unpaid
	EndPaused      = "paused"       // a trial ended without a payment method
	EndPeriodEnded = "period_ended" // trialing or active past its period with no renewal seen
	EndOther       = "other"        // incomplete_expired or a status paystream does not know
)

// endReason says why s's access ended (or ends at access_until).
func endReason(s *model.Subscription) string {
	switch {
	case s.Status == model.SubscriptionCanceled:
		return EndCanceled
	case s.Status == model.SubscriptionUnpaid:
		return EndUnpaid
	case s.Status == model.SubscriptionPaused:
		return EndPaused
	case s.CancelAtPeriodEnd || s.CancelAt != nil:
		return EndCanceled
	case s.Status == model.SubscriptionPastDue:
		return EndGraceEnded
	case s.Status == model.SubscriptionTrialing || s.Status == model.SubscriptionActive:
		return EndPeriodEnded
	}
	return EndOther
}
