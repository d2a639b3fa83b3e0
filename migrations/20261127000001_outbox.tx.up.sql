-- Transactional outbox: domain events written in the same transaction as the
-- purchase change they describe, relayed to the PURCHASES stream afterwards.
CREATE TABLE outbox (
    id            uuid        PRIMARY KEY,
    subject       text        NOT NULL CHECK (subject LIKE 'purchases.%'),
    event_type    text        NOT NULL,
    aggregate_id  uuid        NOT NULL,
    payload       jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    attempts      integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error    text
);

-- The relay scans unpublished rows oldest first; the partial index stays small.
CREATE INDEX outbox_unpublished_idx ON outbox (created_at) WHERE published_at IS NULL;
CREATE INDEX outbox_aggregate_idx ON outbox (aggregate_id, created_at);
