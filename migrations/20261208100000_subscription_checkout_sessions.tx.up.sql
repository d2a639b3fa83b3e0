-- subscription_checkout_sessions: every Stripe Checkout Session in
-- subscription mode the purchase API created. checkout_sessions holds one
-- content item per session and its processor moves it; a membership sells a
-- plan, so its sessions live here. The API reuses an open session of the
-- same customer and plan and replays an Idempotency-Key from this table;
-- before reusing a session it asks Stripe whether it is still open and
-- records what Stripe says (complete with its subscription, or expired), so
-- no webhook has to move the row. Price, currency and interval are copied
-- from the plan when the session is created (the caller never sets them).
CREATE TABLE subscription_checkout_sessions (
    id                  text        PRIMARY KEY CHECK (id <> ''),
    customer_id         text        NOT NULL CHECK (customer_id <> ''),
    plan_id             uuid        NOT NULL,
    organization_id     uuid        NOT NULL,
    amount_cents        bigint      NOT NULL CHECK (amount_cents > 0),
    currency            text        NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    interval            text        NOT NULL CHECK (interval IN ('month', 'year')),
    interval_count      integer     NOT NULL CHECK (interval_count > 0),
    trial_days          integer     NOT NULL DEFAULT 0 CHECK (trial_days >= 0),
    stripe_customer_id  text        CHECK (stripe_customer_id <> ''),
    subscription_id     text        CHECK (subscription_id <> ''),
    status              text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'complete', 'expired')),
    url                 text,
    idempotency_key     text        CHECK (idempotency_key <> ''),
    livemode            boolean     NOT NULL DEFAULT false,
    expires_at          timestamptz NOT NULL,
    completed_at        timestamptz,
    expired_at          timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT subscription_checkout_sessions_plan_fkey FOREIGN KEY (plan_id, organization_id)
        REFERENCES subscription_plans (id, organization_id),
    CONSTRAINT subscription_checkout_sessions_idempotency_key UNIQUE (idempotency_key),
    CONSTRAINT subscription_checkout_sessions_complete_has_completed_at
        CHECK (status <> 'complete' OR completed_at IS NOT NULL),
    CONSTRAINT subscription_checkout_sessions_expired_has_expired_at
        CHECK (status <> 'expired' OR expired_at IS NOT NULL)
);
-- "Has this customer an open session for this plan?" (before creating one).
CREATE INDEX subscription_checkout_sessions_open_idx ON subscription_checkout_sessions (customer_id, plan_id, expires_at)
    WHERE status = 'open';
