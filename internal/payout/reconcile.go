package payout

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/paystream/paystream/model"
)

// Difference is one thing Stripe's transfers and the payouts disagree on.
type Difference struct {
	PayoutID   uuid.UUID `json:"payout_id,omitempty"`
	TransferID string    `json:"transfer_id,omitempty"`
	Detail     string    `json:"detail"`
}

// ReconcileReport matches the transfers Stripe lists with the payouts.
type ReconcileReport struct {
	Since   time.Time `json:"since"`
	Listed  int       `json:"listed"`  // transfers Stripe listed in the window
	Matched int       `json:"matched"` // of them, recorded by their paid payout as they are
	Foreign int       `json:"foreign"` // of them, not in a payout's transfer group (made outside paystream)
	// Unsettled counts transfers of payouts still open: a run between
	// Stripe's answer and its commit, or one that crashed there; the next
	// run settles them with the same key. Not a difference.
	Unsettled int `json:"unsettled"`
	// Missing: paid payouts attempted in the window whose transfer Stripe
	// did not list.
	Missing []Difference `json:"missing"`
	// Extra: transfers in a payout's group that no paid payout records: a
	// duplicate, a transfer of a failed or canceled payout, or of no payout.
	Extra []Difference `json:"extra"`
	// Amount: transfers whose amount, currency or destination is not their
	// payout's.
	Amount []Difference `json:"amount"`
	// Reversed: transfers reversed by another amount than their payout
	// records (a transfer.reversed not applied yet, or missed).
	Reversed []Difference `json:"reversed"`
}

// Differences is the number of differences of every kind.
func (r ReconcileReport) Differences() int {
	return len(r.Missing) + len(r.Extra) + len(r.Amount) + len(r.Reversed)
}

// Reconcile lists the transfers Stripe created since since and matches them
// with the payouts: every transfer of a payout's group must be the one its
// paid payout records, with its amount, currency, destination and reversed
// amount; every paid payout first attempted since since must have its
// transfer listed. It records the counts in m (the gauge the alert reads).
func Reconcile(ctx context.Context, db bun.IDB, stripe Transfers, since time.Time, m *Metrics) (ReconcileReport, error) {
	rep := ReconcileReport{Since: since, Missing: []Difference{}, Extra: []Difference{}, Amount: []Difference{}, Reversed: []Difference{}}
	listed := map[string]bool{}
	var ours []Transfer
	err := stripe.ListTransfers(ctx, since, func(t Transfer) error {
		rep.Listed++
		listed[t.ID] = true
		if _, ok := payoutOfGroup(t.TransferGroup); ok {
			ours = append(ours, t)
		} else {
			rep.Foreign++
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("payout reconcile: %w", err)
	}
	ids := make([]uuid.UUID, 0, len(ours))
	for _, t := range ours {
		id, _ := payoutOfGroup(t.TransferGroup)
		ids = append(ids, id)
	}
	rows, err := reconcileRows(ctx, db, ids, since)
	if err != nil {
		return rep, err
	}
	byID := map[uuid.UUID]reconcileRow{}
	for _, r := range rows {
		byID[r.ID] = r
	}
	for _, t := range ours {
		id, _ := payoutOfGroup(t.TransferGroup)
		r, ok := byID[id]
		switch {
		case !ok:
			rep.Extra = append(rep.Extra, Difference{PayoutID: id, TransferID: t.ID, Detail: "no payout has this id"})
		case (r.Status == model.PayoutPending || r.Status == model.PayoutInTransit) && t.Amount == r.AmountCents:
			rep.Unsettled++
		case r.Status != model.PayoutPaid || r.StripeTransferID == nil || *r.StripeTransferID != t.ID:
			rep.Extra = append(rep.Extra, Difference{PayoutID: id, TransferID: t.ID,
				Detail: fmt.Sprintf("payout is %s recording transfer %s", r.Status, deref(r.StripeTransferID))})
		case t.Amount != r.AmountCents || t.Currency != r.Currency || t.Destination != deref(r.StripeAccountID):
			rep.Amount = append(rep.Amount, Difference{PayoutID: id, TransferID: t.ID,
				Detail: fmt.Sprintf("transfer %d %s to %s, payout %d %s to %s", t.Amount, t.Currency, t.Destination,
					r.AmountCents, r.Currency, deref(r.StripeAccountID))})
		case t.AmountReversed != r.AmountReversedCents:
			rep.Reversed = append(rep.Reversed, Difference{PayoutID: id, TransferID: t.ID,
				Detail: fmt.Sprintf("transfer reversed %d, payout records %d", t.AmountReversed, r.AmountReversedCents)})
		default:
			rep.Matched++
		}
	}
	for _, r := range rows {
		if r.Status == model.PayoutPaid && r.StripeTransferID != nil && r.InWindow && !listed[*r.StripeTransferID] {
			rep.Missing = append(rep.Missing, Difference{PayoutID: r.ID, TransferID: *r.StripeTransferID,
				Detail: "paid payout's transfer not listed by Stripe"})
		}
	}
	m.observeReconcile(rep)
	return rep, nil
}

// reconcileRow is a payout with its payee's account.
type reconcileRow struct {
	ID                  uuid.UUID `bun:"id"`
	Status              string    `bun:"status"`
	Currency            string    `bun:"currency"`
	AmountCents         int64     `bun:"amount_cents"`
	AmountReversedCents int64     `bun:"amount_reversed_cents"`
	StripeTransferID    *string   `bun:"stripe_transfer_id"`
	StripeAccountID     *string   `bun:"stripe_account_id"`
	InWindow            bool      `bun:"in_window"`
}

// clockSkew is the margin between paystream's clock and Stripe's: a payout
// first attempted less than this after the window's start may have a
// transfer Stripe dates before it, so its absence is not reported.
const clockSkew = 5 * time.Minute

// reconcileRows reads the payouts of ids and every payout first attempted
// since since; in_window marks those whose transfer Stripe must have listed.
func reconcileRows(ctx context.Context, db bun.IDB, ids []uuid.UUID, since time.Time) ([]reconcileRow, error) {
	var rows []reconcileRow
	err := db.NewRaw(`
SELECT o.id, o.status, o.currency, o.amount_cents, o.amount_reversed_cents, o.stripe_transfer_id, p.stripe_account_id,
       coalesce(o.first_attempt_at >= ?, false) AS in_window
FROM payouts o JOIN payees p ON p.kind = o.payee_kind AND p.id = o.payee_id
WHERE o.id = ANY(?::uuid[]) OR o.first_attempt_at >= ?`, since.Add(clockSkew), pgdialect.Array(ids), since).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("payout reconcile: read payouts: %w", err)
	}
	return rows, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
