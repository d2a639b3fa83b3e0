package purchase

import (
	"time"

	"github.com/paystream/paystream/model"
)

// State is what the lifecycle looks at: the purchase status and its dispute
// flag. Status "" means no purchase exists yet. The dispute is a flag beside
// the status, not a status, because a won dispute leaves the purchase where it
// was; only a lost one changes the status (to dispute_lost).
type State struct {
	Status  string // "" (none) or a model.Purchase* status
	Dispute string // "" (never disputed), model.DisputeOpen, DisputeWon, DisputeLost
}

// Trigger is what a Stripe event means for a purchase.
type Trigger string

// Triggers, with the Stripe events that produce them.
const (
	TriggerUnpaid        Trigger = "unpaid"         // checkout.session.completed, payment_status unpaid
	TriggerPaid          Trigger = "paid"           // checkout.session.completed paid / no_payment_required, async_payment_succeeded
	TriggerPaymentFailed Trigger = "payment_failed" // checkout.session.async_payment_failed
	TriggerExpired       Trigger = "expired"        // checkout.session.expired
	TriggerPartialRefund Trigger = "partial_refund" // charge.refunded, amount_refunded < amount
	TriggerFullRefund    Trigger = "full_refund"    // charge.refunded, amount_refunded >= amount
	TriggerDisputeOpened Trigger = "dispute_opened" // charge.dispute.created
	TriggerDisputeWon    Trigger = "dispute_won"    // charge.dispute.closed, status won (or warning_closed)
	TriggerDisputeLost   Trigger = "dispute_lost"   // charge.dispute.closed, status lost
)

// Transition is the purchase state machine (docs/lifecycle.md has it as a
// table). It returns the state after t and whether anything changed. It never
// moves a purchase backwards: any event arriving after a later state has been
// reached changes nothing, which is what makes every order of delivery end in
// the same state.
//
// Rank of statuses: pending < completed < partially_refunded < refunded <
// dispute_lost, and pending < failed. failed and dispute_lost are terminal.
// A refund or dispute on a pending purchase is premature (see Premature), not
// a transition.
func Transition(from State, t Trigger) (State, bool) {
	to := from
	switch t {
	case TriggerUnpaid:
		if from.Status == "" {
			to.Status = model.PurchasePending
		}
	case TriggerPaid:
		if from.Status == "" || from.Status == model.PurchasePending {
			to.Status = model.PurchaseCompleted
		}
	case TriggerPaymentFailed:
		if from.Status == "" || from.Status == model.PurchasePending {
			to.Status = model.PurchaseFailed
		}
	case TriggerExpired:
		// An expired session with no purchase creates nothing: it never
		// had a payment. Only a pending purchase can still fail this way.
		if from.Status == model.PurchasePending {
			to.Status = model.PurchaseFailed
		}
	case TriggerPartialRefund:
		if from.Status == model.PurchaseCompleted {
			to.Status = model.PurchasePartiallyRefunded
		}
	case TriggerFullRefund:
		if from.Status == model.PurchaseCompleted || from.Status == model.PurchasePartiallyRefunded {
			to.Status = model.PurchaseRefunded
		}
	case TriggerDisputeOpened:
		if paid(from.Status) && from.Dispute == "" {
			to.Dispute = model.DisputeOpen
		}
	case TriggerDisputeWon:
		if paid(from.Status) && (from.Dispute == "" || from.Dispute == model.DisputeOpen) {
			to.Dispute = model.DisputeWon
		}
	case TriggerDisputeLost:
		if paid(from.Status) && (from.Dispute == "" || from.Dispute == model.DisputeOpen) {
			to.Dispute = model.DisputeLost
			to.Status = model.PurchaseDisputeLost
		}
	}
	return to, to != from
}

// Premature reports whether t needs a paid purchase that does not exist yet:
// a refund or dispute for a purchase that is missing or still pending. The
// event is retried (fault.Pending) until the purchase is paid, because Stripe
// does not order events.
func Premature(from State, t Trigger) bool {
	switch t {
	case TriggerPartialRefund, TriggerFullRefund, TriggerDisputeOpened, TriggerDisputeWon, TriggerDisputeLost:
		return from.Status == "" || from.Status == model.PurchasePending
	}
	return false
}

// paid reports whether a payment went through at some point.
func paid(status string) bool {
	switch status {
	case model.PurchaseCompleted, model.PurchasePartiallyRefunded, model.PurchaseRefunded, model.PurchaseDisputeLost:
		return true
	}
	return false
}

// AccessPolicy holds the settings of the access rule.
type AccessPolicy struct {
	// RevokeOnPartialRefund revokes access when any part of the price is
	// refunded. Off by default: a partial refund is usually a goodwill
	// gesture, and the customer keeps the content.
	RevokeOnPartialRefund bool
}

// Grant is a non-purchase content_access grant (subscription, complimentary,
// preview).
type Grant struct {
	AccessType string
	ExpiresAt  *time.Time
	RevokedAt  *time.Time
}

// Grants reports whether this purchase state on its own gives access: a paid
// purchase that is not (fully, or per policy partially) refunded and not lost
// to a dispute. An open dispute keeps access until it is lost.
func (p AccessPolicy) Grants(s State) bool {
	if s.Dispute == model.DisputeLost {
		return false
	}
	switch s.Status {
	case model.PurchaseCompleted:
		return true
	case model.PurchasePartiallyRefunded:
		return !p.RevokeOnPartialRefund
	}
	return false
}

// HasAccess is the one access rule: a user has access to a content item while
// one of their purchases of it grants access (AccessPolicy.Grants), or a
// non-purchase grant is neither revoked nor expired at now.
func HasAccess(purchases []State, grant *Grant, now time.Time, p AccessPolicy) bool {
	for _, s := range purchases {
		if p.Grants(s) {
			return true
		}
	}
	return grant != nil && grant.AccessType != model.AccessPurchased && grant.RevokedAt == nil &&
		(grant.ExpiresAt == nil || now.Before(*grant.ExpiresAt))
}
