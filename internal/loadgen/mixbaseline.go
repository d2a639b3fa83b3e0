package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/subscription"
	"github.com/paystream/paystream/streams"
)

// LoadStream publishes evs to STRIPE_EVENTS as the edge would, in their
// order from conc publishers (so reordered only within conc events).
func LoadStream(ctx context.Context, js jetstream.JetStream, evs []StreamEvent, conc int) error {
	return publishN(ctx, js, len(evs), conc, func() func(int) stripeevent.Event {
		return func(i int) stripeevent.Event {
			ev := evs[i]
			return stripeevent.Event{ID: ev.ID, Type: ev.Type, APIVersion: stripefixture.APIVersion,
				Endpoint: streams.DefaultEndpoint, Created: ev.Created, ReceivedAt: time.Now(), Source: "bench", Payload: ev.Body}
		}
	})
}

// StreamBaseline executes the writes of every event of evs directly
// against Postgres, one transaction per event, from conc workers taking the
// events in stream order: a checkout as SQLBaseline does, a subscription
// event with the statements its rows need (the event row, the subscription
// inserted or updated, a paid invoice with its split snapshot and its
// ledger posting, the subscriptions.* outbox row). Like SQLBaseline it has
// no broker, no decoding and no rules: each event's rows are decided in
// advance (MixedStream).
func StreamBaseline(ctx context.Context, db *bun.DB, evs []StreamEvent, pur Purchase, conc int, w io.Writer) (Result, error) {
	ledger := ledgerRows(pur)
	return perEventTx(ctx, db, len(evs), conc, w, func() eventTx {
		return func(ctx context.Context, tx bun.Tx, i int) error {
			ev := evs[i]
			var err error
			if ev.Checkout != nil {
				err = baselineTx(ctx, tx, *ev.Checkout, ev.Body, pur, ledger)
			} else {
				err = memberTx(ctx, tx, ev)
			}
			if err != nil {
				return fmt.Errorf("%s %s: %w", ev.Type, ev.ID, err)
			}
			return nil
		}
	})
}

// memberTx writes one subscription event's rows.
func memberTx(ctx context.Context, tx bun.Tx, ev StreamEvent) error {
	m := ev.Member
	now := time.Now().UTC()
	if _, err := tx.NewRaw(`INSERT INTO stripe_events (event_id, type, endpoint, livemode, api_version,
		stripe_created_at, received_at, processed_at, outcome, payload)
		VALUES (?, ?, 'default', false, ?, ?, ?, ?, 'applied', ?)`,
		ev.ID, ev.Type, stripefixture.APIVersion, ev.Created, now, now, json.RawMessage(ev.Body)).Exec(ctx); err != nil {
		return err
	}
	switch {
	case m.invoice != nil:
		inv := *m.invoice
		inv.CreatedAt, inv.UpdatedAt = now, now
		if _, err := tx.NewInsert().Model(&inv).Exec(ctx); err != nil {
			return fmt.Errorf("invoice: %w", err)
		}
		if err := baselinePosting(ctx, tx, posting{invoice: &inv.ID, amount: inv.AmountPaidCents, at: inv.PaidAt}, m.ledger); err != nil {
			return err
		}
	case m.insert:
		sub := *m.sub
		sub.CreatedAt, sub.UpdatedAt = now, now
		if _, err := tx.NewInsert().Model(&sub).Exec(ctx); err != nil {
			return fmt.Errorf("subscription: %w", err)
		}
	default:
		sub := *m.sub
		sub.UpdatedAt = now
		res, err := tx.NewUpdate().Model(&sub).ExcludeColumn("id", "customer_id", "plan_id", "created_at").WherePK().Exec(ctx)
		if err != nil {
			return fmt.Errorf("subscription: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("subscription %s: %d rows updated (%v): its creation has not committed", sub.ID, n, err)
		}
	}
	if m.outbox == "" {
		return nil
	}
	_, err := tx.NewRaw(`INSERT INTO outbox (id, subject, event_type, aggregate_id, payload) VALUES (?, ?, ?, ?, ?)`,
		uuid.New(), subscription.Subject(m.outbox), subscription.EventType(m.outbox), subscription.AggregateID(m.sub.ID),
		json.RawMessage(`{"specversion":"1.0","type":"`+subscription.EventType(m.outbox)+`"}`)).Exec(ctx)
	return err
}
