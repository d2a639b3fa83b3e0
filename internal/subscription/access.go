package subscription

import (
	"time"

	"github.com/paystream/paystream/model"
)

// AccessUntil is the one access rule: when the access s grants ends, or the
// zero time when it grants none.
//   - trialing, active: the end of the current period (a trial's period ends
//     with the trial);
//   - past_due: past_due_since + the plan's grace days, capped by the period
//     end + grace, so a failed renewal does not cut access on the spot;
//   - cancel_at_period_end (or a cancel_at): never past that end;
//   - incomplete, incomplete_expired, canceled, unpaid, paused: none.
//
// The result is stored as access_until and compared with now when access is
// checked, so access ends on time with no job running.
func AccessUntil(s State) time.Time {
	var until time.Time
	switch s.Status {
	case model.SubscriptionTrialing, model.SubscriptionActive:
		until = s.PeriodEnd
	case model.SubscriptionPastDue:
		if s.PastDueSince.IsZero() || s.PeriodEnd.IsZero() {
			return time.Time{}
		}
		until = minTime(graceEnd(s.PastDueSince, s.GraceDays), graceEnd(s.PeriodEnd, s.GraceDays))
	default:
		return time.Time{}
	}
	if s.CancelAtPeriodEnd {
		until = minTime(until, s.PeriodEnd)
	}
	if !s.CancelAt.IsZero() {
		until = minTime(until, s.CancelAt)
	}
	return until
}

// Grants reports whether access stored as accessUntil (nil or zero: none)
// holds at now.
func Grants(accessUntil *time.Time, now time.Time) bool {
	return accessUntil != nil && !accessUntil.IsZero() && now.Before(*accessUntil)
}

// graceEnd is t plus days calendar days in UTC.
func graceEnd(t time.Time, days int) time.Time { return t.UTC().AddDate(0, 0, days) }

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
