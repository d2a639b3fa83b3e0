-- stripe_events: one row per Stripe event id ever applied, written in the
-- transaction of its effects. It is the idempotency key behind the broker's
-- dedup window and the audit trail. A dead-lettered event has no row (its
-- transaction rolled back), so fixing the cause and replaying it applies it.
CREATE TABLE stripe_events (
    event_id           text        PRIMARY KEY CHECK (event_id <> ''),
    type               text        NOT NULL,
    endpoint           text        NOT NULL,
    livemode           boolean     NOT NULL,
    api_version        text        NOT NULL DEFAULT '',
    stripe_created_at  timestamptz,
    received_at        timestamptz,
    processed_at       timestamptz NOT NULL,
    outcome            text        NOT NULL CHECK (outcome IN ('applied', 'duplicate', 'ignored', 'recorded')),
    error              text,
    purchase_id        uuid        REFERENCES purchases (id),
    payload            jsonb       NOT NULL
);
CREATE INDEX stripe_events_type_processed_idx ON stripe_events (type, processed_at);
CREATE INDEX stripe_events_purchase_idx ON stripe_events (purchase_id) WHERE purchase_id IS NOT NULL;
