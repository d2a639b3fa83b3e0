-- Payees and payouts: who receives money through Stripe Connect and each
-- transfer paystream makes to them. The payout engine fills them; the schema
-- holds what can never be true whatever code writes.

-- payees: one row per creator or organization with (or about to get) a
-- Stripe Express connected account. account_event_created is the `created`
-- of the last account.updated applied, so an older event never overwrites a
-- newer one.
CREATE TABLE payees (
    kind                   text        NOT NULL CHECK (kind IN ('creator', 'organization')),
    id                     text        NOT NULL CHECK (id <> ''),
    stripe_account_id      text        CHECK (stripe_account_id ~ '^acct_.+'),
    charges_enabled        boolean     NOT NULL DEFAULT false,
    payouts_enabled        boolean     NOT NULL DEFAULT false,
    requirements_due       jsonb       NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(requirements_due) = 'array'),
    disabled_reason        text,
    account_event_created  timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),

    PRIMARY KEY (kind, id),
    CONSTRAINT payees_stripe_account_key UNIQUE (stripe_account_id),
    -- Organization ids are uuids; the ledger's owner key is built from them.
    CONSTRAINT payees_organization_id_is_uuid
        CHECK (kind <> 'organization' OR id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
);

-- payouts: one Stripe transfer to one payee in one currency. transfer_group
-- is `payout:<id>`, the handle under which a retry lists what Stripe already
-- did; amount_reversed_cents is the transfer's cumulative amount_reversed.
CREATE TABLE payouts (
    id                     uuid        PRIMARY KEY,
    payee_kind             text        NOT NULL,
    payee_id               text        NOT NULL,
    currency               text        NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    amount_cents           bigint      NOT NULL CHECK (amount_cents > 0),
    amount_reversed_cents  bigint      NOT NULL DEFAULT 0,
    status                 text        NOT NULL DEFAULT 'pending'
                                       CHECK (status IN ('pending', 'in_transit', 'paid', 'failed', 'canceled')),
    stripe_transfer_id     text        CHECK (stripe_transfer_id ~ '^tr_.+'),
    transfer_group         text        NOT NULL,
    failure_code           text,
    attempts               integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    first_attempt_at       timestamptz,
    last_attempt_at        timestamptz,
    paid_at                timestamptz,
    failed_at              timestamptz,
    canceled_at            timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT payouts_payee_fkey FOREIGN KEY (payee_kind, payee_id) REFERENCES payees (kind, id),
    CONSTRAINT payouts_stripe_transfer_key UNIQUE (stripe_transfer_id),
    CONSTRAINT payouts_transfer_group_is_id CHECK (transfer_group = 'payout:' || id::text),
    CONSTRAINT payouts_reversed_within_amount CHECK (amount_reversed_cents BETWEEN 0 AND amount_cents),
    CONSTRAINT payouts_reversed_only_when_paid CHECK (amount_reversed_cents = 0 OR status = 'paid'),
    CONSTRAINT payouts_paid_has_transfer
        CHECK (status <> 'paid' OR (stripe_transfer_id IS NOT NULL AND paid_at IS NOT NULL)),
    CONSTRAINT payouts_failed_has_failed_at CHECK (status <> 'failed' OR failed_at IS NOT NULL),
    CONSTRAINT payouts_canceled_has_canceled_at CHECK (status <> 'canceled' OR canceled_at IS NOT NULL),
    CONSTRAINT payouts_attempted_has_first_attempt CHECK (attempts = 0 OR first_attempt_at IS NOT NULL)
);
-- A payee's payouts newest first, with a stable cursor.
CREATE INDEX payouts_payee_created_idx ON payouts (payee_kind, payee_id, created_at DESC, id DESC);
-- Payouts a run still has to settle.
CREATE INDEX payouts_open_idx ON payouts (created_at) WHERE status IN ('pending', 'in_transit');
