package eventtx

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/model"
)

// errSeen reports that an event's id is in stripe_events already.
var errSeen = errors.New("stripe event was handled before")

// claim inserts ev's stripe_events row with rec's outcome. It reports false
// when the id is there already. A concurrent transaction inserting the same
// id blocks on the primary key until the first commits (then false) or rolls
// back (then true): duplicates handled at once by several instances
// serialize here at the latest.
func claim(ctx context.Context, tx bun.Tx, ev Event, rec *Record, now time.Time) (bool, error) {
	row := eventRow(ev, rec, now)
	res, err := tx.NewInsert().Model(&row).On("CONFLICT (event_id) DO NOTHING").Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("record stripe event %s: %w", ev.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("record stripe event %s: %w", ev.ID, err)
	}
	return n == 1, nil
}

// claimed is an event of a set-based part with its record, to be claimed.
type claimed struct {
	ev  *Event
	rec *Record
}

// claimAll inserts the stripe_events rows of cs in one statement, in event
// id order (the lock order of every path), and returns the events whose id
// another transaction claimed first: the caller must roll back then.
func claimAll(ctx context.Context, tx bun.Tx, cs []claimed, now time.Time) (lost []*Event, err error) {
	if len(cs) == 0 {
		return nil, nil
	}
	cs = slices.Clone(cs)
	slices.SortFunc(cs, func(a, b claimed) int { return strings.Compare(a.ev.ID, b.ev.ID) })
	rows := make([]model.StripeEvent, len(cs))
	for j, c := range cs {
		rows[j] = eventRow(*c.ev, c.rec, now)
	}
	var ids []string
	if _, err := tx.NewInsert().Model(&rows).On("CONFLICT (event_id) DO NOTHING").
		Returning("event_id").Exec(ctx, &ids); err != nil {
		return nil, fmt.Errorf("record %d stripe events: %w", len(rows), err)
	}
	if len(ids) == len(cs) {
		return nil, nil
	}
	got := make(map[string]bool, len(ids))
	for _, id := range ids {
		got[id] = true
	}
	for _, c := range cs {
		if !got[c.ev.ID] {
			lost = append(lost, c.ev)
		}
	}
	return lost, nil
}

// eventRow is the stripe_events row of ev with rec's outcome, handled at
// now. The payload is stored as the edge accepted it (model.JSON).
func eventRow(ev Event, rec *Record, now time.Time) model.StripeEvent {
	created := ev.At
	row := model.StripeEvent{
		EventID: ev.ID, Type: ev.Type, Endpoint: ev.Endpoint, Livemode: ev.Livemode,
		APIVersion: ev.APIVersion, StripeCreatedAt: &created, ProcessedAt: now.UTC(),
		Outcome: rec.stored(), PurchaseID: rec.purchaseID, Payload: model.JSON(ev.Payload),
	}
	if rec.note != "" {
		row.Error = &rec.note
	}
	if !ev.ReceivedAt.IsZero() {
		r := ev.ReceivedAt.UTC()
		row.ReceivedAt = &r
	}
	return row
}

// eventSeen reports whether id is in stripe_events.
func eventSeen(ctx context.Context, idb bun.IDB, id string) (bool, error) {
	seen, err := idb.NewSelect().Model((*model.StripeEvent)(nil)).Where("event_id = ?", id).Exists(ctx)
	if err != nil {
		return false, fmt.Errorf("look up stripe event %s: %w", id, err)
	}
	return seen, nil
}
