-- subscriptions: one row per Stripe subscription sold through paystream,
-- holding the state of the newest event applied to it (event_created) and
-- the access it grants (access_until, compared with now by the access check,
-- so access ends on time without a job). internal/subscription writes it;
-- docs/subscriptions.md has the ordering and access rules.
CREATE TABLE subscriptions (
    id                    text        PRIMARY KEY CHECK (id <> ''),
    customer_id           text        NOT NULL CHECK (customer_id <> ''),
    plan_id               uuid        NOT NULL REFERENCES subscription_plans (id),
    stripe_customer_id    text        CHECK (stripe_customer_id <> ''),
    status                text        NOT NULL CHECK (status IN ('incomplete', 'incomplete_expired', 'trialing',
                                          'active', 'past_due', 'canceled', 'unpaid', 'paused')),
    current_period_start  timestamptz NOT NULL,
    current_period_end    timestamptz NOT NULL,
    cancel_at_period_end  boolean     NOT NULL DEFAULT false,
    cancel_at             timestamptz,
    canceled_at           timestamptz,
    ended_at              timestamptz,
    trial_start           timestamptz,
    trial_end             timestamptz,
    started_at            timestamptz,
    past_due_since        timestamptz,
    access_until          timestamptz,
    event_created         timestamptz NOT NULL,
    last_event_id         text        NOT NULL CHECK (last_event_id <> ''),
    livemode              boolean     NOT NULL DEFAULT false,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),

    -- Target of subscription_invoices' composite foreign key: an invoice is
    -- judged for its subscription's plan.
    CONSTRAINT subscriptions_id_plan_key UNIQUE (id, plan_id),
    CONSTRAINT subscriptions_period_ordered CHECK (current_period_end > current_period_start),
    CONSTRAINT subscriptions_past_due_since CHECK ((status = 'past_due') = (past_due_since IS NOT NULL)),
    -- Only these three statuses grant access; every other one has none.
    CONSTRAINT subscriptions_access_only_while_live
        CHECK (status IN ('trialing', 'active', 'past_due') OR access_until IS NULL)
);

-- The access check: the subscriptions of one customer that grant access
-- after now, newest first; the INCLUDE columns answer it from the index.
CREATE INDEX subscriptions_access_idx ON subscriptions (customer_id, access_until DESC)
    INCLUDE (plan_id, id, status, started_at) WHERE access_until IS NOT NULL;
-- "Has this customer a live subscription to this plan?" (before a checkout).
CREATE INDEX subscriptions_customer_plan_idx ON subscriptions (customer_id, plan_id);
-- A customer's subscriptions, newest first, with a stable cursor.
CREATE INDEX subscriptions_customer_created_idx ON subscriptions (customer_id, created_at DESC, id DESC);
CREATE INDEX subscriptions_plan_idx ON subscriptions (plan_id);
