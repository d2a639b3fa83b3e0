package subscription

import (
	"testing"
	"time"

	"github.com/paystream/paystream/model"
)

func TestAccessUntil(t *testing.T) {
	start, end := t0, t0.Add(31*day)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	tests := []struct {
		name string
		s    State
		want time.Time
	}{
		{"active: the period end", State{Facts: Facts{Status: model.SubscriptionActive}}, end},
		{"trialing: the trial period end", State{Facts: Facts{Status: model.SubscriptionTrialing}}, end},
		{"past_due: since + grace", State{Facts: Facts{Status: model.SubscriptionPastDue}, PastDueSince: start, GraceDays: 3}, at(3 * day)},
		{"past_due, grace 0: ends when it fell behind", State{Facts: Facts{Status: model.SubscriptionPastDue}, PastDueSince: start}, start},
		{"past_due: capped by the period end + grace", State{Facts: Facts{Status: model.SubscriptionPastDue}, PastDueSince: end.Add(10 * day), GraceDays: 3}, end.Add(3 * day)},
		{"past_due without since: none", State{Facts: Facts{Status: model.SubscriptionPastDue}, GraceDays: 3}, time.Time{}},
		{"past_due, cancel at period end: not past the end", State{Facts: Facts{Status: model.SubscriptionPastDue, CancelAtPeriodEnd: true}, PastDueSince: end.Add(-day), GraceDays: 3}, end},
		{"active, cancel at period end: the period end", State{Facts: Facts{Status: model.SubscriptionActive, CancelAtPeriodEnd: true}}, end},
		{"active, cancel_at before the end: cancel_at", State{Facts: Facts{Status: model.SubscriptionActive, CancelAt: at(10 * day)}}, at(10 * day)},
		{"active, cancel_at after the end: the end", State{Facts: Facts{Status: model.SubscriptionActive, CancelAt: end.Add(day)}}, end},
		{"incomplete: none", State{Facts: Facts{Status: model.SubscriptionIncomplete}}, time.Time{}},
		{"incomplete_expired: none", State{Facts: Facts{Status: model.SubscriptionIncompleteExpired}}, time.Time{}},
		{"canceled: none", State{Facts: Facts{Status: model.SubscriptionCanceled}}, time.Time{}},
		{"unpaid: none", State{Facts: Facts{Status: model.SubscriptionUnpaid}}, time.Time{}},
		{"paused: none", State{Facts: Facts{Status: model.SubscriptionPaused}}, time.Time{}},
		{"unknown: none", State{Facts: Facts{Status: "dormant"}}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.s.PeriodStart, tt.s.PeriodEnd = start, end
			if got := AccessUntil(tt.s); !got.Equal(tt.want) {
				t.Errorf("AccessUntil = %v, want %v", got, tt.want)
			}
		})
	}
}

// Access ends at access_until exactly, with no job: the check compares.
func TestGrants(t *testing.T) {
	until := t0.Add(day)
	for _, tt := range []struct {
		until *time.Time
		now   time.Time
		want  bool
	}{
		{&until, t0, true},
		{&until, until.Add(-time.Nanosecond), true},
		{&until, until, false},
		{&until, until.Add(time.Second), false},
		{nil, t0, false},
		{&time.Time{}, t0, false},
	} {
		if got := Grants(tt.until, tt.now); got != tt.want {
			t.Errorf("Grants(%v, %v) = %v, want %v", tt.until, tt.now, got, tt.want)
		}
	}
}
