package payout

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/model"
)

// TransferReversal is what a transfer.reversed event says: the transfer
// with its cumulative amount_reversed after the reversal.
type TransferReversal struct {
	TransferID     string // tr_…
	TransferGroup  string // payout:<id> for paystream's transfers
	AmountReversed int64  // cumulative, as Stripe reports it
	ReversalID     string // trr_… of the newest reversal, "" if the payload has none
	EventCreated   time.Time
}

// TransferReversalOf reads a transfer.reversed event's data.object (a
// Stripe transfer) and the event's created time.
func TransferReversalOf(t *stripe.Transfer, eventCreated time.Time) TransferReversal {
	r := TransferReversal{TransferID: t.ID, TransferGroup: t.TransferGroup, AmountReversed: t.AmountReversed, EventCreated: eventCreated}
	if t.Reversals != nil && len(t.Reversals.Data) > 0 {
		newest := t.Reversals.Data[0]
		for _, x := range t.Reversals.Data[1:] {
			if x.Created > newest.Created {
				newest = x
			}
		}
		r.ReversalID = newest.ID
	}
	return r
}

// ReversalOutcome is what ApplyTransferReversed did.
type ReversalOutcome string

// Outcomes of ApplyTransferReversed.
const (
	// ReversalPosted: the reversed amount not posted before is back in the
	// payee's available balance.
	ReversalPosted ReversalOutcome = "posted"
	// ReversalAlreadyPosted: the cumulative amount was posted already (a
	// redelivery, a second event id, an older event): nothing changed.
	ReversalAlreadyPosted ReversalOutcome = "already_posted"
	// ReversalNotOurs: the transfer is not a payout's (no payout has it or
	// its group): nothing changed.
	ReversalNotOurs ReversalOutcome = "not_ours"
)

// ErrNotSettled is a reversal of a payout whose own settlement has not
// committed yet (the run that made the transfer is between Stripe's answer
// and its commit): a transient condition; the route retries the event.
var ErrNotSettled = errors.New("payout: the reversed transfer's payout is not settled yet")

// ErrUnrecordedTransfer is a reversal of a transfer in a payout's group
// that the payout does not record (it failed, or records another
// transfer): a duplicate transfer, never retried; `paystream payouts
// reconcile` reports it and docs/payouts.md says what to do.
var ErrUnrecordedTransfer = errors.New("payout: a transfer in the payout's group that the payout does not record")

// Reversal is what ApplyTransferReversed did.
type Reversal struct {
	Outcome ReversalOutcome
	Payout  model.Payout // the payout after the reversal (zero when not ours)
	Credit  int64        // minor units credited back to available by this event
}

// ApplyTransferReversed credits a reversed transfer back to its payee's
// available balance in the event's transaction db: it locks the payout,
// posts ledger.TransferReversed for the growth of the cumulative
// amount_reversed (so each reversed cent is posted once whatever the order
// or repetition of events), records it on the payout and writes
// payouts.reversed.
func ApplyTransferReversed(ctx context.Context, db bun.IDB, r TransferReversal) (Reversal, error) {
	return reverseTransfer(ctx, db, r, func(t ledger.Transaction) error {
		_, err := ledger.Post(ctx, db, t)
		return err
	})
}

// reverseTransfer is ApplyTransferReversed with the ledger posting handed to
// post: the payout family's route hands it to its event's record, so the
// event lifecycle writes every posting of a transaction (a batch of events
// of every family) with one ledger.PostMany, the accounts locked last and in
// one order.
func reverseTransfer(ctx context.Context, db bun.IDB, r TransferReversal, post func(ledger.Transaction) error) (Reversal, error) {
	if r.TransferID == "" || r.EventCreated.IsZero() {
		return Reversal{}, errors.New("payout: transfer.reversed without a transfer id or a created time")
	}
	var p model.Payout
	err := db.NewSelect().Model(&p).Where("stripe_transfer_id = ?", r.TransferID).For("UPDATE").Scan(ctx)
	if isNoRows(err) {
		id, ok := payoutOfGroup(r.TransferGroup)
		if !ok {
			return Reversal{Outcome: ReversalNotOurs}, nil
		}
		err = db.NewSelect().Model(&p).Where("id = ?", id).For("UPDATE").Scan(ctx)
		if isNoRows(err) {
			return Reversal{Outcome: ReversalNotOurs}, nil
		}
		if err == nil && (p.Status == model.PayoutPending || p.Status == model.PayoutInTransit) {
			return Reversal{}, fmt.Errorf("%w: payout %s is %s", ErrNotSettled, p.ID, p.Status)
		}
		if err == nil {
			return Reversal{}, fmt.Errorf("%w: payout %s is %s, transfer %s", ErrUnrecordedTransfer, p.ID, p.Status, r.TransferID)
		}
	}
	if err != nil {
		return Reversal{}, fmt.Errorf("payout: read payout of %s: %w", r.TransferID, err)
	}
	t, err := ledger.TransferReversed(&p, r.AmountReversed, r.ReversalID, r.EventCreated)
	if err != nil {
		return Reversal{}, err
	}
	if t.IsZero() {
		return Reversal{Outcome: ReversalAlreadyPosted, Payout: p}, nil
	}
	credit := r.AmountReversed - p.AmountReversedCents
	if err := post(t); err != nil {
		return Reversal{}, err
	}
	now := time.Now().UTC()
	p.AmountReversedCents, p.UpdatedAt = r.AmountReversed, now
	if _, err := db.NewUpdate().Model(&p).Column("amount_reversed_cents", "updated_at").WherePK().Exec(ctx); err != nil {
		return Reversal{}, fmt.Errorf("payout %s: record reversal: %w", p.ID, err)
	}
	if err := addPayoutEvent(ctx, db, EventReversed, &p, now); err != nil {
		return Reversal{}, err
	}
	return Reversal{Outcome: ReversalPosted, Payout: p, Credit: credit}, nil
}

// ObserveReversal counts what ApplyTransferReversed did in
// paystream_payouts_payee_updates_total{outcome}.
func (m *Metrics) ObserveReversal(o ReversalOutcome) {
	switch o {
	case ReversalPosted:
		m.payeeUpdate(payeeReversal)
	case ReversalAlreadyPosted:
		m.payeeUpdate(payeeReversalNoop)
	case ReversalNotOurs:
		m.payeeUpdate(payeeUnknownAccount)
	}
}

// payoutOfGroup returns the payout id of a transfer group payout:<id>.
func payoutOfGroup(group string) (uuid.UUID, bool) {
	s, ok := strings.CutPrefix(group, "payout:")
	if !ok {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(s)
	return id, err == nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
