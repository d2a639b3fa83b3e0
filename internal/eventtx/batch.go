package eventtx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/stripeevent"
)

// HandleBatch applies evs in one transaction and commits once: the commit (a
// WAL flush) and BEGIN/COMMIT round trips are shared by the batch. The
// events the families' set paths select are applied first, with a fixed
// number of statements for all of them (setbased.go); every other event
// inside its own SAVEPOINT after them. A later copy of an event id in the
// batch gets its first copy's result. The result of each event is exactly
// Handle's:
//
//   - an event that cannot be decoded, or whose handling fails, is rolled
//     back to its savepoint and gets its own error; its neighbours go on;
//   - if the transaction as a whole fails (a savepoint cannot be rolled back,
//     the commit fails on a serialization failure, a deadlock or a lost
//     connection), nothing of it is committed and every event is handled
//     again in its own transaction by Handle, so no event inherits another's
//     failure;
//   - after-commit work and the "handled" log line come only after the
//     commit.
//
// Locks taken by an event (its stripe_events key, the rows its route locks)
// are held until the batch commits. Two batches of different instances that
// lock the same keys in opposite order deadlock; Postgres then fails one
// event's statement (40P01, retried like any deadlock) and that event's
// savepoint rollback releases its locks, so the rest of both batches
// commits.
func (h *Handler) HandleBatch(ctx context.Context, ses []stripeevent.Event) []handling.Result {
	res := make([]handling.Result, len(ses))
	if len(ses) == 1 && h.cfg.Batch != BatchSetBasedAlways {
		res[0].Outcome, res[0].Err = h.Handle(ctx, ses[0])
		return res
	}
	logs := make([]*slog.Logger, len(ses))
	evs := make([]Event, len(ses))
	todo := make([]int, 0, len(ses)) // indexes of the decoded events
	for i, se := range ses {
		logs[i] = h.eventLog(se)
		ev, err := h.Decode(se)
		if err != nil {
			logs[i].Warn("stripe event rejected", "reason", fault.ReasonOf(err), "error", err)
			res[i].Err = err
			continue
		}
		evs[i] = ev
		todo = append(todo, i)
	}
	if len(todo) == 0 {
		return res
	}
	todo, copies := dedupByID(evs, todo)
	defer settleCopies(res, copies, logs)
	apply := h.applySetBased
	if h.cfg.Batch == BatchPerEvent || len(h.sets) == 0 {
		apply = h.applyBatch
	}
	tctx, span := startTxSpan(ctx, len(todo))
	recs, errs, err := apply(tctx, evs, todo)
	endTxSpan(span, err)
	if err != nil {
		h.log.Warn("batch transaction failed; handling its events one per transaction", "events", len(todo), "error", err)
		for _, i := range todo {
			res[i].Outcome, res[i].Err = h.Handle(ctx, ses[i])
		}
		return res
	}
	for _, i := range todo {
		if errs[i] != nil {
			res[i].Err = h.notApplied(logs[i], errs[i])
			continue
		}
		res[i].Outcome = h.committed(logs[i], recs[i])
	}
	return res
}

// eventCopy is a later delivery, in the same batch, of an event id.
type eventCopy struct{ copy, first int }

// dedupByID returns todo without the later copies of an event id, and the
// copies. A copy's result is its first's: the same error, or Duplicate.
func dedupByID(evs []Event, todo []int) ([]int, []eventCopy) {
	first := make(map[string]int, len(todo))
	out := make([]int, 0, len(todo))
	var copies []eventCopy
	for _, i := range todo {
		if f, ok := first[evs[i].ID]; ok {
			copies = append(copies, eventCopy{copy: i, first: f})
			continue
		}
		first[evs[i].ID] = i
		out = append(out, i)
	}
	return out, copies
}

// settleCopies gives every copy its first's result: handled one by one, the
// copy would find the id claimed (Duplicate) or fail as the first did.
func settleCopies(res []handling.Result, copies []eventCopy, logs []*slog.Logger) {
	for _, c := range copies {
		if err := res[c.first].Err; err != nil {
			res[c.copy].Err = err
			continue
		}
		res[c.copy].Outcome = handling.Duplicate
		logs[c.copy].Info("stripe event handled", "outcome", handling.Duplicate, "note", "same event id twice in one batch")
	}
}

// applyBatch runs the events evs[i], i in todo, in one transaction, each in
// its savepoint, and commits it. It returns each event's record or its own
// error (rolled back to the event's savepoint), or an error of the
// transaction as a whole, in which case nothing was committed.
func (h *Handler) applyBatch(ctx context.Context, evs []Event, todo []int) (recs []*Record, errs []error, err error) {
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("begin batch: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // the connection may be gone; the transaction ends with it
		}
	}()
	recs, errs = make([]*Record, len(evs)), make([]error, len(evs))
	if err := h.applyEach(ctx, tx, evs, todo, recs, errs, &txLedger{}); err != nil {
		return nil, nil, err
	}
	if err := h.post(ctx, tx, recs); err != nil {
		return nil, nil, err
	}
	if err := h.commitBatch(ctx, tx, len(todo)); err != nil {
		return nil, nil, err
	}
	return recs, errs, nil
}

// applyEach applies the events evs[i], i in todo, one after the other inside
// tx, each in its own savepoint, and sets recs[i] or errs[i]; tl collects
// the ledger postings of the events that succeeded. An error returned is
// one of the transaction as a whole.
//
// Savepoints are not released: RELEASE would cost one more round trip per
// event and frees nothing that matters (a subtransaction's xid stays with the
// top transaction until it ends either way). "ROLLBACK TO SAVEPOINT event"
// rolls back to the most recent savepoint of that name, the current event's.
func (h *Handler) applyEach(ctx context.Context, tx bun.Tx, evs []Event, todo []int, recs []*Record, errs []error, tl *txLedger) error {
	for _, i := range todo {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT event"); err != nil {
			return fmt.Errorf("savepoint for stripe event %s: %w", evs[i].ID, err)
		}
		rec, aerr := h.apply(ctx, tx, evs[i], tl)
		if aerr == nil {
			recs[i] = rec
			tl.keep(rec)
			continue
		}
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT event"); err != nil {
			return fmt.Errorf("roll back stripe event %s to its savepoint (after %v): %w", evs[i].ID, aerr, err)
		}
		if errors.Is(aerr, errSeen) {
			recs[i] = &Record{seen: true}
			continue
		}
		// As in Handle: a failed event whose id was applied before is a
		// duplicate.
		seen, err := eventSeen(ctx, tx, evs[i].ID)
		if err != nil {
			return err
		}
		if seen {
			recs[i] = &Record{seen: true}
			continue
		}
		errs[i] = aerr
	}
	return nil
}

// commitBatch runs the BeforeCommit hook, then commits tx.
func (h *Handler) commitBatch(ctx context.Context, tx bun.Tx, n int) error {
	if h.cfg.BeforeCommit != nil {
		if err := h.cfg.BeforeCommit(ctx, tx); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit batch of %d events: %w", n, err)
	}
	return nil
}
