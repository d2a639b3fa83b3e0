// Package outbox writes domain events into the outbox table inside the
// transaction of the change they describe, and relays them to the PURCHASES
// stream afterwards. Because the row commits with the change, no event is
// lost between commit and publish; because the relay publishes with
// Nats-Msg-Id = row id, a row published twice (crash after publish, before
// marking it) is stored once by the broker.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

// Add writes one event into the outbox through idb (normally the purchase
// transaction). subject is the NATS subject (purchases.<kind>), eventType the
// CloudEvents type, aggregate the id of the entity the event is about (the
// CloudEvents subject). It returns the event id, which is also the broker's
// dedup key.
func Add(ctx context.Context, idb bun.IDB, subject, eventType string, aggregate uuid.UUID, data any, now time.Time) (uuid.UUID, error) {
	row, err := NewRow(ctx, subject, eventType, aggregate, data, now)
	if err != nil {
		return uuid.Nil, err
	}
	if _, err := idb.NewInsert().Model(&row).Exec(ctx); err != nil {
		return uuid.Nil, fmt.Errorf("outbox: insert %s event for %s: %w", eventType, aggregate, err)
	}
	return row.ID, nil
}

// NewRow builds the outbox row Add would insert, for writers that insert
// many rows in one statement (a set-based batch). The row carries the trace
// of ctx, so the relay publishes it in that trace.
func NewRow(ctx context.Context, subject, eventType string, aggregate uuid.UUID, data any, now time.Time) (model.Outbox, error) {
	if !streams.IsDomainSubject(subject) {
		return model.Outbox{}, fmt.Errorf("outbox: subject %q is not a literal subject of a domain family (%s)",
			subject, strings.Join(streams.DomainSubjectPrefixes, ", "))
	}
	// Version 7 ids sort by creation time, which keeps the relay's index
	// scans and the broker's dedup window friendly.
	id, err := uuid.NewV7()
	if err != nil {
		return model.Outbox{}, fmt.Errorf("outbox: new id: %w", err)
	}
	now = now.UTC()
	payload, err := json.Marshal(streams.CloudEvent[any]{
		SpecVersion:     streams.CloudEventsSpecVersion,
		ID:              id.String(),
		Source:          streams.PurchaseEventSource,
		Type:            eventType,
		Subject:         aggregate.String(),
		Time:            now,
		DataContentType: streams.PurchaseDataType,
		Data:            data,
	})
	if err != nil {
		return model.Outbox{}, fmt.Errorf("outbox: encode %s event: %w", eventType, err)
	}
	return model.Outbox{
		ID: id, Subject: subject, EventType: eventType, AggregateID: aggregate,
		Payload: payload, CreatedAt: now, TraceParent: streams.TraceParent(ctx),
	}, nil
}

// Message builds the NATS message of row: its subject, the envelope as body,
// Nats-Msg-Id = row id, and content-type headers. The relay publishes exactly
// this message however often it retries, so the broker can deduplicate.
func Message(row model.Outbox) *nats.Msg {
	m := nats.NewMsg(row.Subject)
	m.Data = row.Payload
	m.Header.Set(streams.HeaderMsgID, row.ID.String())
	m.Header.Set(streams.HeaderContentType, streams.CloudEventsContentType)
	m.Header.Set(streams.HeaderCEType, row.EventType)
	m.Header.Set(streams.HeaderCEID, row.ID.String())
	return m
}
