package eventtx

import (
	"context"
	"fmt"
	"slices"

	"github.com/uptrace/bun"
)

// SetPath applies some events of a batch with set-based statements: a
// fixed number of statements for all of them instead of a route call (about
// ten statements) each. In a batch's transaction the set paths run first;
// the lifecycle then claims in one statement the events they settled, and
// runs every other event through its route, each in its savepoint.
type SetPath interface {
	// Select picks, in batch order, the events of batch it applies. batch
	// holds the decoded events of the whole batch, every family's, in
	// order, one per event id. Select takes only events of its own
	// family's types, and leaves to the per-event path any event whose
	// result could depend on an event before it in the batch that it does
	// not take: the set-based part runs before the others.
	Select(batch []*Event) []*Event
	// Apply applies sel inside tx and returns one record per event of sel;
	// a nil record leaves that event to the per-event path, which runs it
	// after the set-based part, in batch order. Apply does not claim the
	// events it settles: the lifecycle does, after every set path, in
	// event id order, so the stripe_events keys come after the domain rows
	// in the lock order of every path. Nor does it write to the ledger: it
	// hands each event's ledger transactions to its record (Record.Post),
	// and the lifecycle posts those of the whole batch with one PostMany
	// before the commit (ledger.go). An error fails the batch's
	// transaction as a whole (its events are then handled one by one).
	Apply(ctx context.Context, tx bun.Tx, sel []*Event) ([]*Record, error)
}

// applySetBased applies evs[i], i in todo, in one transaction: what the set
// paths select set-based, the rest one by one in savepoints after them. An
// event whose stripe_events claim was lost to another instance rolls the
// transaction back; the batch then runs again without it, and it is a
// duplicate. The returned values mean what applyBatch's mean.
func (h *Handler) applySetBased(ctx context.Context, evs []Event, todo []int) ([]*Record, []error, error) {
	batch := make([]*Event, len(todo))
	index := make(map[*Event]int, len(todo))
	for j, i := range todo {
		batch[j] = &evs[i]
		index[&evs[i]] = i
	}
	sels := make([][]*Event, len(h.sets))
	taken := make(map[int]bool)
	for k, sp := range h.sets {
		for _, ev := range sp.Select(batch) {
			if i, ok := index[ev]; ok && !taken[i] {
				taken[i] = true
				sels[k] = append(sels[k], ev)
			}
		}
	}
	if len(taken) == 0 {
		return h.applyBatch(ctx, evs, todo)
	}
	var rest []int
	for _, i := range todo {
		if !taken[i] {
			rest = append(rest, i)
		}
	}
	var lostAll []int
	for {
		var recs []*Record
		var errs []error
		var lost []int
		var err error
		switch {
		case slices.ContainsFunc(sels, func(sel []*Event) bool { return len(sel) > 0 }):
			recs, errs, lost, err = h.applySetBatch(ctx, evs, sels, rest, index)
		case len(rest) > 0:
			recs, errs, err = h.applyBatch(ctx, evs, rest)
		default:
			recs, errs = make([]*Record, len(evs)), make([]error, len(evs))
		}
		if err != nil {
			return nil, nil, err
		}
		if len(lost) == 0 {
			for _, i := range lostAll {
				recs[i] = &Record{seen: true}
			}
			return recs, errs, nil
		}
		h.log.Info("stripe events of the batch claimed by another transaction; applying the batch without them", "events", len(lost))
		lostAll = append(lostAll, lost...)
		for k := range sels {
			sels[k] = slices.DeleteFunc(sels[k], func(ev *Event) bool { return slices.Contains(lost, index[ev]) })
		}
	}
}

// applySetBatch runs one attempt of applySetBased: the set paths, the claim
// of what they settled, then the other events one by one, then the commit.
// lost lists events whose claim another transaction holds; the transaction
// was rolled back then.
func (h *Handler) applySetBatch(ctx context.Context, evs []Event, sels [][]*Event, rest []int, index map[*Event]int) (recs []*Record, errs []error, lost []int, err error) {
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("begin batch: %w", err)
	}
	defer func() {
		if err != nil || len(lost) > 0 {
			_ = tx.Rollback() // the connection may be gone; the transaction ends with it
		}
	}()
	start := h.cfg.Now() // processed_at: when handling began
	var settled []claimed
	var moved []int
	for k, sel := range sels {
		if len(sel) == 0 {
			continue
		}
		rs, err := h.sets[k].Apply(ctx, tx, sel)
		if err != nil {
			return nil, nil, nil, err
		}
		if len(rs) != len(sel) {
			return nil, nil, nil, fmt.Errorf("set path returned %d records for %d events", len(rs), len(sel))
		}
		for j, ev := range sel {
			if rs[j] == nil {
				moved = append(moved, index[ev])
				continue
			}
			settled = append(settled, claimed{ev: ev, rec: rs[j]})
		}
	}
	lostEvs, err := claimAll(ctx, tx, settled, start)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(lostEvs) > 0 {
		for _, ev := range lostEvs {
			lost = append(lost, index[ev])
		}
		return nil, nil, lost, nil
	}
	recs, errs = make([]*Record, len(evs)), make([]error, len(evs))
	tl := &txLedger{}
	for _, c := range settled {
		recs[index[c.ev]] = c.rec
		tl.keep(c.rec)
	}
	each := append(slices.Clone(rest), moved...)
	slices.Sort(each) // batch order
	if err := h.applyEach(ctx, tx, evs, each, recs, errs, tl); err != nil {
		return nil, nil, nil, err
	}
	// Every event's postings in batch order, as the per-event path posts
	// them, so both paths write the same entries.
	if err := h.post(ctx, tx, recs); err != nil {
		return nil, nil, nil, err
	}
	if err := h.commitBatch(ctx, tx, len(settled)+len(each)); err != nil {
		return nil, nil, nil, err
	}
	return recs, errs, nil, nil
}
