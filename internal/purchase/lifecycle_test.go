package purchase_test

import (
	"testing"
	"time"

	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/model"
)

// transitionTable is docs/lifecycle.md's table. Each row is (from, trigger)
// → to; rows not listed change nothing (checked below for every pair).
var transitionTable = []struct {
	from    purchase.State
	trigger purchase.Trigger
	to      purchase.State
}{
	{st("", ""), purchase.TriggerUnpaid, st(model.PurchasePending, "")},
	{st("", ""), purchase.TriggerPaid, st(model.PurchaseCompleted, "")},
	{st("", ""), purchase.TriggerPaymentFailed, st(model.PurchaseFailed, "")},
	{st(model.PurchasePending, ""), purchase.TriggerPaid, st(model.PurchaseCompleted, "")},
	{st(model.PurchasePending, ""), purchase.TriggerPaymentFailed, st(model.PurchaseFailed, "")},
	{st(model.PurchasePending, ""), purchase.TriggerExpired, st(model.PurchaseFailed, "")},
	{st(model.PurchaseCompleted, ""), purchase.TriggerPartialRefund, st(model.PurchasePartiallyRefunded, "")},
	{st(model.PurchaseCompleted, ""), purchase.TriggerFullRefund, st(model.PurchaseRefunded, "")},
	{st(model.PurchasePartiallyRefunded, ""), purchase.TriggerFullRefund, st(model.PurchaseRefunded, "")},
}

// Dispute rows hold for every paid status (completed, partially_refunded,
// refunded); a lost dispute also moves the status to dispute_lost.
var disputeTable = []struct {
	from    string
	trigger purchase.Trigger
	to      string
	lost    bool
}{
	{"", purchase.TriggerDisputeOpened, model.DisputeOpen, false},
	{"", purchase.TriggerDisputeWon, model.DisputeWon, false},
	{"", purchase.TriggerDisputeLost, model.DisputeLost, true},
	{model.DisputeOpen, purchase.TriggerDisputeWon, model.DisputeWon, false},
	{model.DisputeOpen, purchase.TriggerDisputeLost, model.DisputeLost, true},
}

func st(status, dispute string) purchase.State {
	return purchase.State{Status: status, Dispute: dispute}
}

var (
	allStatuses = []string{"", model.PurchasePending, model.PurchaseCompleted, model.PurchaseFailed,
		model.PurchasePartiallyRefunded, model.PurchaseRefunded, model.PurchaseDisputeLost}
	allDisputes = []string{"", model.DisputeOpen, model.DisputeWon, model.DisputeLost}
	allTriggers = []purchase.Trigger{purchase.TriggerUnpaid, purchase.TriggerPaid, purchase.TriggerPaymentFailed,
		purchase.TriggerExpired, purchase.TriggerPartialRefund, purchase.TriggerFullRefund,
		purchase.TriggerDisputeOpened, purchase.TriggerDisputeWon, purchase.TriggerDisputeLost}
	paidStatuses = []string{model.PurchaseCompleted, model.PurchasePartiallyRefunded, model.PurchaseRefunded}
)

// expected returns the table's answer for (from, t).
func expected(from purchase.State, t purchase.Trigger) purchase.State {
	for _, r := range transitionTable {
		if r.from.Status == from.Status && r.trigger == t {
			return purchase.State{Status: r.to.Status, Dispute: from.Dispute}
		}
	}
	if from.Status == model.PurchaseDisputeLost {
		return from
	}
	for _, s := range paidStatuses {
		if from.Status != s {
			continue
		}
		for _, r := range disputeTable {
			if r.from == from.Dispute && r.trigger == t {
				to := purchase.State{Status: from.Status, Dispute: r.to}
				if r.lost {
					to.Status = model.PurchaseDisputeLost
				}
				return to
			}
		}
	}
	return from
}

// reachable lists every state a purchase can be in: the dispute flag exists
// only on paid purchases, and dispute_lost always carries a lost flag (the
// schema's CHECK says so too).
func reachable() []purchase.State {
	var out []purchase.State
	for _, s := range allStatuses {
		for _, d := range allDisputes {
			switch {
			case s == model.PurchaseDisputeLost && d != model.DisputeLost,
				s != model.PurchaseDisputeLost && d == model.DisputeLost,
				(s == "" || s == model.PurchasePending || s == model.PurchaseFailed) && d != "":
				continue
			}
			out = append(out, st(s, d))
		}
	}
	return out
}

// Every reachable (state, trigger) pair matches the documented table, and
// "changed" is true exactly when the state differs.
func TestTransitionMatchesTable(t *testing.T) {
	for _, from := range reachable() {
		for _, tr := range allTriggers {
			got, changed := purchase.Transition(from, tr)
			want := expected(from, tr)
			if got != want || changed != (want != from) {
				t.Errorf("Transition(%+v, %s) = %+v, %v; want %+v, %v", from, tr, got, changed, want, want != from)
			}
		}
	}
}

// No sequence of triggers ever moves a purchase to a lower rank, and every
// trigger applied twice in a row changes nothing the second time.
func TestTransitionNeverMovesBackwardsAndIsIdempotent(t *testing.T) {
	rank := map[string]int{"": 0, model.PurchasePending: 1, model.PurchaseFailed: 2, model.PurchaseCompleted: 2,
		model.PurchasePartiallyRefunded: 3, model.PurchaseRefunded: 4, model.PurchaseDisputeLost: 5}
	for _, from := range reachable() {
		for _, tr := range allTriggers {
			to, _ := purchase.Transition(from, tr)
			if rank[to.Status] < rank[from.Status] {
				t.Errorf("Transition(%+v, %s) = %+v moves backwards", from, tr, to)
			}
			if from.Status == model.PurchaseFailed && to != from {
				t.Errorf("failed is terminal, but %s moved it to %+v", tr, to)
			}
			if !contains(reachable(), to) {
				t.Errorf("Transition(%+v, %s) = %+v is not a reachable state", from, tr, to)
			}
			if again, changed := purchase.Transition(to, tr); changed || again != to {
				t.Errorf("Transition twice with %s from %+v changed %+v → %+v", tr, from, to, again)
			}
		}
	}
}

func TestPremature(t *testing.T) {
	for _, tr := range allTriggers {
		money := tr != purchase.TriggerUnpaid && tr != purchase.TriggerPaid && tr != purchase.TriggerPaymentFailed && tr != purchase.TriggerExpired
		for _, s := range allStatuses {
			want := money && (s == "" || s == model.PurchasePending)
			if got := purchase.Premature(st(s, ""), tr); got != want {
				t.Errorf("Premature(%q, %s) = %v, want %v", s, tr, got, want)
			}
		}
	}
}

// One test per row of the access table in docs/lifecycle.md.
func TestHasAccess(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Hour), now.Add(time.Hour)
	keep, revoke := purchase.AccessPolicy{}, purchase.AccessPolicy{RevokeOnPartialRefund: true}
	tests := []struct {
		name      string
		purchases []purchase.State
		grant     *purchase.Grant
		policy    purchase.AccessPolicy
		want      bool
	}{
		{"nothing", nil, nil, keep, false},
		{"pending", []purchase.State{st(model.PurchasePending, "")}, nil, keep, false},
		{"completed", []purchase.State{st(model.PurchaseCompleted, "")}, nil, keep, true},
		{"failed", []purchase.State{st(model.PurchaseFailed, "")}, nil, keep, false},
		{"partially refunded, default policy keeps access", []purchase.State{st(model.PurchasePartiallyRefunded, "")}, nil, keep, true},
		{"partially refunded, revoke policy", []purchase.State{st(model.PurchasePartiallyRefunded, "")}, nil, revoke, false},
		{"refunded", []purchase.State{st(model.PurchaseRefunded, "")}, nil, keep, false},
		{"completed, dispute open keeps access", []purchase.State{st(model.PurchaseCompleted, model.DisputeOpen)}, nil, keep, true},
		{"completed, dispute won", []purchase.State{st(model.PurchaseCompleted, model.DisputeWon)}, nil, keep, true},
		{"dispute lost", []purchase.State{st(model.PurchaseDisputeLost, model.DisputeLost)}, nil, keep, false},
		{"refunded then bought again", []purchase.State{st(model.PurchaseRefunded, ""), st(model.PurchaseCompleted, "")}, nil, keep, true},
		{"complimentary grant", nil, &purchase.Grant{AccessType: model.AccessComplimentary}, keep, true},
		{"subscription expired", nil, &purchase.Grant{AccessType: model.AccessSubscription, ExpiresAt: &past}, keep, false},
		{"subscription running", nil, &purchase.Grant{AccessType: model.AccessSubscription, ExpiresAt: &future}, keep, true},
		{"preview revoked", nil, &purchase.Grant{AccessType: model.AccessPreview, RevokedAt: &past}, keep, false},
		{"refunded purchase with a complimentary grant", []purchase.State{st(model.PurchaseRefunded, "")},
			&purchase.Grant{AccessType: model.AccessComplimentary}, keep, true},
		{"a purchased row is not a grant by itself", nil, &purchase.Grant{AccessType: model.AccessPurchased}, keep, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := purchase.HasAccess(tt.purchases, tt.grant, now, tt.policy); got != tt.want {
				t.Errorf("HasAccess = %v, want %v", got, tt.want)
			}
		})
	}
}

func contains(states []purchase.State, s purchase.State) bool {
	for _, x := range states {
		if x == s {
			return true
		}
	}
	return false
}
