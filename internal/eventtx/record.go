package eventtx

import (
	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/model"
)

// Record is what a route did with its event. It becomes the event's
// stripe_events row (outcome, error note, purchase link) and, once the
// transaction committed, the runtime's outcome and the route's after-commit
// work (metrics). The zero Record is an applied event.
type Record struct {
	outcome    string // model.Event*; "" is applied
	note       string // why nothing changed (stripe_events.error)
	purchaseID *uuid.UUID
	after      []func()
	seen       bool                 // the event id was in stripe_events already
	postings   []ledger.Transaction // what the event posts to the ledger (Post)
	tx         *txLedger            // the postings of the transaction's earlier events; nil alone
}

// Applied records that the event changed the database.
func (r *Record) Applied() { r.outcome = model.EventApplied }

// Duplicate records that the event's change had been made already (under
// another event id, or by an event that came later): nothing changed.
func (r *Record) Duplicate(note string) { r.outcome, r.note = model.EventDuplicate, note }

// Recorded records a handled event kept for audit that changes nothing, and
// why.
func (r *Record) Recorded(note string) { r.outcome, r.note = model.EventRecorded, note }

// Link stores the purchase the event concerns in its stripe_events row.
func (r *Record) Link(purchaseID uuid.UUID) { r.purchaseID = &purchaseID }

// AfterCommit runs f once the event's transaction committed, never for
// effects that were rolled back: metrics count only what happened.
func (r *Record) AfterCommit(f func()) { r.after = append(r.after, f) }

// stored is the stripe_events outcome.
func (r *Record) stored() string {
	if r.outcome == "" {
		return model.EventApplied
	}
	return r.outcome
}

// result is the runtime's outcome.
func (r *Record) result() handling.Outcome {
	switch {
	case r.seen || r.outcome == model.EventDuplicate:
		return handling.Duplicate
	case r.outcome == model.EventIgnored:
		return handling.Ignored
	default:
		return handling.Applied
	}
}

func (r *Record) purchaseIDString() string {
	if r.purchaseID == nil {
		return ""
	}
	return r.purchaseID.String()
}
