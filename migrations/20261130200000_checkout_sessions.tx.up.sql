-- checkout_sessions: every Stripe Checkout Session the purchase API created.
-- The API inserts it `open`; the processor moves it to `complete` or `expired`
-- from the checkout.session.* webhooks it already handles, so open sessions
-- are known without asking Stripe. Amount and currency are copied from the
-- catalog at creation (the caller never sets a price).
CREATE TABLE checkout_sessions (
    id               text        PRIMARY KEY CHECK (id <> ''),
    customer_id      text        NOT NULL CHECK (customer_id <> ''),
    content_id       uuid        NOT NULL,
    organization_id  uuid        NOT NULL,
    amount_cents     bigint      NOT NULL CHECK (amount_cents > 0),
    currency         text        NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    status           text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'complete', 'expired')),
    url              text,
    idempotency_key  text        CHECK (idempotency_key <> ''),
    livemode         boolean     NOT NULL DEFAULT false,
    expires_at       timestamptz NOT NULL,
    completed_at     timestamptz,
    expired_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT checkout_sessions_content_fkey FOREIGN KEY (content_id, organization_id)
        REFERENCES content (id, organization_id),
    CONSTRAINT checkout_sessions_idempotency_key UNIQUE (idempotency_key),
    CONSTRAINT checkout_sessions_complete_has_completed_at
        CHECK (status <> 'complete' OR completed_at IS NOT NULL),
    CONSTRAINT checkout_sessions_expired_has_expired_at
        CHECK (status <> 'expired' OR expired_at IS NOT NULL)
);
-- "Has this customer an open session for this content?" (before creating one).
CREATE INDEX checkout_sessions_open_idx ON checkout_sessions (customer_id, content_id, expires_at)
    WHERE status = 'open';

-- Purchase history of one customer, newest first, with a stable cursor.
CREATE INDEX purchases_customer_created_idx ON purchases (customer_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
