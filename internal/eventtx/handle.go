package eventtx

import (
	"context"
	"errors"
	"log/slog"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/model"
)

// Handle applies se in one transaction. It returns Duplicate when se's id
// was applied before or its change was already made under another event id,
// Ignored for a type no family routes, and a fault error otherwise: Invalid
// (dead letter) for input that can never apply, Pending for an event whose
// prerequisite does not exist yet, Unavailable/Internal for retryable
// failures.
func (h *Handler) Handle(ctx context.Context, se stripeevent.Event) (handling.Outcome, error) {
	log := h.eventLog(se)
	ev, err := h.Decode(se)
	if err != nil {
		log.Warn("stripe event rejected", "reason", fault.ReasonOf(err), "error", err)
		return "", err
	}
	var rec *Record
	tctx, span := startTxSpan(ctx, 1)
	err = h.db.RunInTx(tctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if rec, err = h.apply(ctx, tx, ev, nil); err != nil {
			return err
		}
		return h.post(ctx, tx, []*Record{rec})
	})
	endTxSpan(span, err)
	if errors.Is(err, errSeen) {
		return h.committed(log, &Record{seen: true}), nil
	}
	if err != nil {
		// The route failed, but its event may have been applied before
		// (a redelivery meeting a changed world): that is a duplicate,
		// as when the claim finds the id. Only failures pay this lookup.
		if seen, serr := eventSeen(ctx, h.db, ev.ID); serr == nil && seen {
			return h.committed(log, &Record{seen: true}), nil
		}
		return "", h.notApplied(log, err)
	}
	return h.committed(log, rec), nil
}

func (h *Handler) eventLog(se stripeevent.Event) *slog.Logger {
	return h.log.With("stripe_event_id", se.ID, "type", se.Type, "subject", se.Subject, "num_delivered", se.Deliveries)
}

// apply is the work of one event inside tx: run its route, then claim its
// id in stripe_events with the outcome (one INSERT, no UPDATE afterwards).
// errSeen means the id was claimed already: tx (or the batch's savepoint)
// must be rolled back, which discards whatever the route wrote. Any other
// error means the same. The event's ledger postings stay on its record
// for the caller to write (post) after every event of tx; tl holds those
// of tx's earlier events (nil for an event alone).
//
// Claiming last is as safe as claiming first: a concurrent copy of the
// event changes the same rows, so it waits on them (or on their insert) and
// then finds the change made; an event with no row to lock waits on the
// stripe_events key instead. Either way the later copy finds the id
// claimed, rolls back and reports a duplicate, so one event never applies
// twice; and the common case pays one statement for the claim, not two.
func (h *Handler) apply(ctx context.Context, tx bun.Tx, ev Event, tl *txLedger) (*Record, error) {
	start := h.cfg.Now() // processed_at: when handling began
	rec := newRecord(tl)
	if rt, routed := h.routes[ev.Type]; !routed {
		rec.outcome = model.EventIgnored
	} else if err := rt.apply(ctx, tx, ev, rec); err != nil {
		return nil, err
	}
	fresh, err := claim(ctx, tx, ev, rec, start)
	if err != nil {
		return nil, err
	}
	if !fresh {
		return nil, errSeen
	}
	return rec, nil
}

// notApplied classifies and logs the failure of an event whose effects were
// rolled back.
func (h *Handler) notApplied(log *slog.Logger, err error) error {
	err = classify(err)
	log.Warn("stripe event not applied", "code", fault.CodeOf(err), "reason", fault.ReasonOf(err), "error", err)
	return err
}

// committed runs the after-commit work of an event whose transaction
// committed, logs it and returns its outcome.
func (h *Handler) committed(log *slog.Logger, rec *Record) handling.Outcome {
	for _, f := range rec.after {
		f()
	}
	out := rec.result()
	log.Info("stripe event handled", "outcome", out, "purchase_id", rec.purchaseIDString(), "note", rec.note)
	return out
}
