package payout

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/model"
)

// The payout's transitions, each one statement or one database transaction.
// Every UPDATE is conditioned on the status and key number it read, so two
// runs advancing the same payout at once cannot both move it: the loser
// changes nothing and stops. Transactions that lock a payee row take it
// first, then the payout, then (ledger.Post) the payee's ledger accounts.

// openStatuses are the statuses of a payout not settled yet.
var openStatuses = bun.In([]string{model.PayoutPending, model.PayoutInTransit})

// errGone is a transition that found the payout already moved by someone
// else (another run): nothing to do.
var errGone = errors.New("payout: moved by another run")

// candidate is a payee balance that may be paid out.
type candidate struct {
	Kind     string `bun:"kind"`
	ID       string `bun:"id"`
	Currency string `bun:"currency"`
	Balance  int64  `bun:"balance"`
}

// candidatePage is how many balances a run reads per statement.
const candidatePage = 1000

// candidates returns the positive available balances of eligible payees
// (payouts enabled, an account, not blocked) that have no open payout in
// their currency, after the key (kind, id, currency) of after, in key order.
func candidates(ctx context.Context, db bun.IDB, after candidate, only *PayeeRef, limit int) ([]candidate, error) {
	var out []candidate
	q := db.NewRaw(`
SELECT p.kind, p.id, a.currency, a.balance
FROM payees p
JOIN ledger_accounts a ON a.owner = p.kind || ':' || p.id AND a.kind = 'available'
WHERE p.payouts_enabled AND p.payouts_blocked_at IS NULL AND p.stripe_account_id IS NOT NULL
  AND a.balance > 0
  AND (p.kind, p.id, a.currency) > (?, ?, ?)
  AND (?::text IS NULL OR (p.kind = ? AND p.id = ?))
  AND NOT EXISTS (SELECT 1 FROM payouts o
                  WHERE o.payee_kind = p.kind AND o.payee_id = p.id AND o.currency = a.currency
                    AND o.status IN (?))
ORDER BY p.kind, p.id, a.currency
LIMIT ?`, after.Kind, after.ID, after.Currency, onlyKind(only), onlyKind(only), onlyID(only), openStatuses, limit)
	if err := q.Scan(ctx, &out); err != nil {
		return nil, fmt.Errorf("payout: select balances to pay: %w", err)
	}
	return out, nil
}

func onlyKind(p *PayeeRef) *string {
	if p == nil {
		return nil
	}
	return &p.Kind
}

func onlyID(p *PayeeRef) *string {
	if p == nil {
		return nil
	}
	return &p.ID
}

// payeeState is what advancing a payout needs of its payee.
type payeeState struct {
	Kind            string  `bun:"kind"`
	ID              string  `bun:"id"`
	StripeAccountID *string `bun:"stripe_account_id"`
	PayoutsEnabled  bool    `bun:"payouts_enabled"`
	BlockedReason   *string `bun:"payouts_blocked_reason"`
}

// eligible reports whether a new payout may be made to the payee.
func (s payeeState) eligible() bool {
	return s.PayoutsEnabled && s.BlockedReason == nil && s.StripeAccountID != nil
}

func (s payeeState) account() string {
	if s.StripeAccountID == nil {
		return ""
	}
	return *s.StripeAccountID
}

// openPayouts returns the payouts not settled yet whose next attempt is due
// at now, oldest first, with their payees.
func openPayouts(ctx context.Context, db bun.IDB, now time.Time, only *PayeeRef) ([]model.Payout, map[[2]string]payeeState, error) {
	var ps []model.Payout
	q := db.NewSelect().Model(&ps).Where("status IN (?)", openStatuses).
		Where("next_attempt_at IS NULL OR next_attempt_at <= ?", now).Order("created_at", "id")
	if only != nil {
		q = q.Where("payee_kind = ? AND payee_id = ?", only.Kind, only.ID)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, nil, fmt.Errorf("payout: select open payouts: %w", err)
	}
	payees, err := payeeStates(ctx, db, ps)
	return ps, payees, err
}

// payeeStates reads the payees of ps.
func payeeStates(ctx context.Context, db bun.IDB, ps []model.Payout) (map[[2]string]payeeState, error) {
	out := map[[2]string]payeeState{}
	if len(ps) == 0 {
		return out, nil
	}
	kinds, ids := make([]string, len(ps)), make([]string, len(ps))
	for i, p := range ps {
		kinds[i], ids[i] = p.PayeeKind, p.PayeeID
	}
	var rows []payeeState
	err := db.NewRaw(`
SELECT p.kind, p.id, p.stripe_account_id, p.payouts_enabled, p.payouts_blocked_reason
FROM payees p JOIN unnest(?::text[], ?::text[]) AS k(kind, id) ON p.kind = k.kind AND p.id = k.id`,
		pgdialect.Array(kinds), pgdialect.Array(ids)).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("payout: read %d payees: %w", len(ps), err)
	}
	for _, r := range rows {
		out[[2]string{r.Kind, r.ID}] = r
	}
	return out, nil
}

// createPayout writes a payout of c's balance: the row, its ledger posting
// (available → in_transit, refused if it would overdraw available) and
// payouts.created, in one transaction. It returns nil when the payee is no
// longer eligible, another run has an open payout for it, or the balance
// shrank since it was read.
func createPayout(ctx context.Context, db *bun.DB, c candidate, now time.Time, m *Metrics) (*model.Payout, payeeState, error) {
	var out *model.Payout
	var payee payeeState
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var rows []payeeState
		if err := tx.NewRaw(`SELECT kind, id, stripe_account_id, payouts_enabled, payouts_blocked_reason
FROM payees WHERE kind = ? AND id = ? FOR SHARE`, c.Kind, c.ID).Scan(ctx, &rows); err != nil {
			return fmt.Errorf("payout: lock payee %s:%s: %w", c.Kind, c.ID, err)
		}
		if len(rows) == 0 || !rows[0].eligible() {
			return nil
		}
		payee = rows[0]
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		p := &model.Payout{
			ID: id, PayeeKind: c.Kind, PayeeID: c.ID, Currency: c.Currency, AmountCents: c.Balance,
			Status: model.PayoutPending, TransferGroup: "payout:" + id.String(), CreatedAt: now, UpdatedAt: now,
		}
		res, err := tx.NewInsert().Model(p).
			On("CONFLICT (payee_kind, payee_id, currency) WHERE status IN ('pending', 'in_transit') DO NOTHING").Exec(ctx)
		if err != nil {
			return fmt.Errorf("payout: insert payout of %s:%s %s: %w", c.Kind, c.ID, c.Currency, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // another run's open payout
		}
		t, err := ledger.PayoutCreated(p)
		if err != nil {
			return err
		}
		if _, err := ledger.Post(ctx, tx, t); err != nil {
			return err
		}
		if err := addPayoutEvent(ctx, tx, EventCreated, p, now); err != nil {
			return err
		}
		out = p
		return nil
	})
	if errors.Is(err, ledger.ErrOverdraft) {
		return nil, payee, nil // a refund raced the run: the next run pays what is there then
	}
	if err != nil || out == nil {
		return nil, payee, err
	}
	m.payout(EventCreated)
	return out, payee, nil
}

// markAttempt records, before the request, that key n is about to be sent:
// the payout goes in_transit, its first attempt time is kept. The commit
// comes before the request, so a crash at any later point finds the key to
// send again and the time of the first request (the 23-hour rule).
func markAttempt(ctx context.Context, db bun.IDB, p *model.Payout, now time.Time) error {
	n := max(p.Attempts, 1)
	var first time.Time
	err := db.NewRaw(`
UPDATE payouts SET status = ?, attempts = ?, first_attempt_at = coalesce(first_attempt_at, ?), last_attempt_at = ?, updated_at = ?
WHERE id = ? AND attempts = ? AND status IN (?)
RETURNING first_attempt_at`, model.PayoutInTransit, n, now, now, now, p.ID, p.Attempts, openStatuses).Scan(ctx, &first)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && first.IsZero()) {
		return errGone
	}
	if err != nil {
		return fmt.Errorf("payout %s: mark attempt %d: %w", p.ID, n, err)
	}
	p.Status, p.Attempts, p.FirstAttemptAt, p.LastAttemptAt = model.PayoutInTransit, n, &first, &now
	return nil
}

// recordUnanswered keeps the key: the next run sends it again.
func recordUnanswered(ctx context.Context, db bun.IDB, p *model.Payout, code string, now time.Time) error {
	_, err := db.NewRaw(`UPDATE payouts SET last_error = ?, updated_at = ? WHERE id = ? AND attempts = ? AND status = ?`,
		code, now, p.ID, p.Attempts, model.PayoutInTransit).Exec(ctx)
	if err != nil {
		return fmt.Errorf("payout %s: record unanswered attempt: %w", p.ID, err)
	}
	return nil
}

// recordSpent moves to the next key, not to be tried before next.
func recordSpent(ctx context.Context, db bun.IDB, p *model.Payout, code string, next, now time.Time) error {
	_, err := db.NewRaw(`
UPDATE payouts SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, updated_at = ?
WHERE id = ? AND attempts = ? AND status = ?`, next, code, now, p.ID, p.Attempts, model.PayoutInTransit).Exec(ctx)
	if err != nil {
		return fmt.Errorf("payout %s: record spent key %d: %w", p.ID, p.Attempts, err)
	}
	return nil
}

// settlePaid records the transfer: paid, in_transit → paid_out and
// payouts.paid in one transaction. inTx runs last inside it (fault
// injection). It returns errGone when another run settled the payout with
// the same transfer first.
func settlePaid(ctx context.Context, db *bun.DB, p *model.Payout, tr Transfer, now time.Time, inTx func(context.Context) error) error {
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		err := settle(ctx, tx, p, EventPaid, now,
			func() error { return settledAlready(ctx, tx, p.ID, tr.ID) },
			func(p *model.Payout) (ledger.Transaction, error) { return ledger.PayoutPaid(p, tr.ID, now) }, `
UPDATE payouts SET status = ?, stripe_transfer_id = ?, paid_at = ?, next_attempt_at = NULL, last_error = NULL, updated_at = ?
WHERE id = ? AND status IN (?)
RETURNING *`, model.PayoutPaid, tr.ID, now, now, p.ID, openStatuses)
		if err != nil {
			return err
		}
		return inTx(ctx)
	})
}

// settle runs one settling UPDATE … RETURNING * of p (query) and what
// follows it in the same transaction: the ledger posting of the new status
// and the payout's event of kind. none says what an UPDATE that matched
// nothing (the payout moved meanwhile) means.
func settle(ctx context.Context, tx bun.Tx, p *model.Payout, kind string, now time.Time, none func() error,
	posting func(*model.Payout) (ledger.Transaction, error), query string, args ...any) error {
	var rows []model.Payout
	if err := tx.NewRaw(query, args...).Scan(ctx, &rows); err != nil {
		return fmt.Errorf("payout %s: settle %s: %w", p.ID, kind, err)
	}
	if len(rows) == 0 {
		return none()
	}
	*p = rows[0]
	t, err := posting(p)
	if err != nil {
		return err
	}
	if _, err := ledger.Post(ctx, tx, t); err != nil {
		return err
	}
	return addPayoutEvent(ctx, tx, kind, p, now)
}

func isGone() error { return errGone }

func backToAvailable(now time.Time) func(*model.Payout) (ledger.Transaction, error) {
	return func(p *model.Payout) (ledger.Transaction, error) { return ledger.PayoutFailed(p, now) }
}

// settledAlready explains an UPDATE that found the payout settled: by
// another run with the same transfer (errGone), or otherwise, which means a
// transfer exists that the payout does not record (an error an operator
// must look at; reconcile reports it as extra).
func settledAlready(ctx context.Context, tx bun.IDB, id uuid.UUID, transferID string) error {
	var p model.Payout
	if err := tx.NewSelect().Model(&p).Where("id = ?", id).Scan(ctx); err != nil {
		return fmt.Errorf("payout %s: reread: %w", id, err)
	}
	if p.Status == model.PayoutPaid && p.StripeTransferID != nil && *p.StripeTransferID == transferID {
		return errGone
	}
	return fmt.Errorf("payout %s is %s but Stripe has transfer %s in its group: reconcile and correct by hand", id, p.Status, transferID)
}

// settleFailed fails a payout whose transfer Stripe refused for good (or
// whose payee was blocked before any request): failed, in_transit →
// available, the payee blocked until its account changes, payouts.failed
// and payees.updated, in one transaction. attempts is the key number the
// refusal answered (0: no request was sent).
func settleFailed(ctx context.Context, db *bun.DB, p *model.Payout, code string, now time.Time, inTx func(context.Context) error) error {
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var payee model.Payee
		if err := tx.NewSelect().Model(&payee).Where("kind = ? AND id = ?", p.PayeeKind, p.PayeeID).For("UPDATE").Scan(ctx); err != nil {
			return fmt.Errorf("payout %s: lock payee: %w", p.ID, err)
		}
		status := model.PayoutInTransit
		if p.Attempts == 0 {
			status = model.PayoutPending
		}
		if err := settle(ctx, tx, p, EventFailed, now, isGone, backToAvailable(now), `
UPDATE payouts SET status = ?, failure_code = ?, failed_at = ?, next_attempt_at = NULL, last_error = ?, updated_at = ?
WHERE id = ? AND attempts = ? AND status = ?
RETURNING *`, model.PayoutFailed, code, now, code, now, p.ID, p.Attempts, status); err != nil {
			return err
		}
		if payee.PayoutsBlockedAt == nil {
			payee.PayoutsBlockedAt, payee.PayoutsBlockedReason, payee.UpdatedAt = &now, &code, now
			if _, err := tx.NewUpdate().Model(&payee).Column("payouts_blocked_at", "payouts_blocked_reason", "updated_at").
				WherePK().Exec(ctx); err != nil {
				return fmt.Errorf("payout %s: block payee: %w", p.ID, err)
			}
			if err := addPayeeEvent(ctx, tx, &payee, changeBlocked, now); err != nil {
				return err
			}
		}
		return inTx(ctx)
	})
}

// cancelPayout withdraws a payout no request was sent for, whose payee is
// no longer eligible (payouts disabled, no account): canceled, in_transit →
// available, payouts.canceled.
func cancelPayout(ctx context.Context, db *bun.DB, p *model.Payout, now time.Time) error {
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		return settle(ctx, tx, p, EventCanceled, now, isGone, backToAvailable(now), `
UPDATE payouts SET status = ?, canceled_at = ?, updated_at = ?
WHERE id = ? AND attempts = 0 AND status = ?
RETURNING *`, model.PayoutCanceled, now, now, p.ID, model.PayoutPending)
	})
}
