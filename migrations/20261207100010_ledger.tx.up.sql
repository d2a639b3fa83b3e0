-- The double-entry ledger (docs/ledger.md). Money is signed integer minor
-- units: a posting takes from one account (negative entry) and gives to
-- another (positive entry), so every transaction sums to zero per currency.
-- Balances are stored on the account, with a version that counts its
-- entries; each entry records the balance and version it left behind.

-- ledger_accounts: one per (owner, currency, kind), created on first use.
-- owner is `platform`, `creator:<creator_id>` or
-- `organization:<organization_id>`.
CREATE TABLE ledger_accounts (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner       text        NOT NULL,
    currency    text        NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    kind        text        NOT NULL,
    balance     bigint      NOT NULL DEFAULT 0,
    version     bigint      NOT NULL DEFAULT 0 CHECK (version >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT ledger_accounts_owner_currency_kind_key UNIQUE (owner, currency, kind),
    CONSTRAINT ledger_accounts_owner_format CHECK (
        owner = 'platform'
        OR owner ~ '^creator:.+'
        OR owner ~ '^organization:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
    -- The platform earns (revenue) and is where the money sits at Stripe
    -- (stripe_clearing); payees have the money's life cycle up to the payout.
    CONSTRAINT ledger_accounts_kind_of_owner CHECK (
        CASE WHEN owner = 'platform'
             THEN kind IN ('pending', 'revenue', 'disputed', 'stripe_clearing')
             ELSE kind IN ('pending', 'available', 'disputed', 'in_transit', 'paid_out')
        END)
);

-- ledger_transactions: one per cause, named by an idempotency key that the
-- cause determines (the CHECKs below), so a second posting of the same cause
-- is refused by the UNIQUE key whatever code writes it.
CREATE TABLE ledger_transactions (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key  text        NOT NULL,
    cause            text        NOT NULL CHECK (cause IN (
                                     'purchase', 'release', 'refund', 'dispute_opened', 'dispute_won', 'dispute_lost',
                                     'payout_created', 'payout_paid', 'payout_failed', 'transfer_reversed')),
    purchase_id      uuid        REFERENCES purchases (id),
    payout_id        uuid        REFERENCES payouts (id),
    -- The money the cause is about as it reported it: the amount paid, the
    -- cumulative refund, the disputed amount, the payout amount, the
    -- cumulative transfer reversal (a release: the gross it moved).
    amount_cents     bigint      NOT NULL CHECK (amount_cents >= 0),
    -- The Stripe object behind the cause (re_…, du_…, tr_…), when there is one.
    reference        text        CHECK (reference <> ''),
    effective_at     timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT ledger_transactions_idempotency_key UNIQUE (idempotency_key),
    CONSTRAINT ledger_transactions_subject CHECK (
        CASE WHEN cause IN ('payout_created', 'payout_paid', 'payout_failed', 'transfer_reversed')
             THEN payout_id IS NOT NULL AND purchase_id IS NULL
             ELSE purchase_id IS NOT NULL AND payout_id IS NULL
        END),
    CONSTRAINT ledger_transactions_key_of_cause CHECK (idempotency_key = CASE cause
        WHEN 'purchase'          THEN 'purchase:' || purchase_id::text
        WHEN 'release'           THEN 'release:' || purchase_id::text
        WHEN 'refund'            THEN 'refund:' || purchase_id::text || ':' || amount_cents::text
        WHEN 'dispute_opened'    THEN 'dispute:' || purchase_id::text || ':opened'
        WHEN 'dispute_won'       THEN 'dispute:' || purchase_id::text || ':closed'
        WHEN 'dispute_lost'      THEN 'dispute:' || purchase_id::text || ':closed'
        WHEN 'payout_created'    THEN 'payout:' || payout_id::text
        WHEN 'payout_paid'       THEN 'payout:' || payout_id::text || ':settled'
        WHEN 'payout_failed'     THEN 'payout:' || payout_id::text || ':settled'
        WHEN 'transfer_reversed' THEN 'payout:' || payout_id::text || ':reversed:' || amount_cents::text
        END)
);
CREATE INDEX ledger_transactions_purchase_idx ON ledger_transactions (purchase_id) WHERE purchase_id IS NOT NULL;
CREATE INDEX ledger_transactions_payout_idx ON ledger_transactions (payout_id) WHERE payout_id IS NOT NULL;
-- Hold releases look for purchase postings older than the hold.
CREATE INDEX ledger_transactions_purchase_effective_idx ON ledger_transactions (effective_at) WHERE cause = 'purchase';

-- ledger_entries: one signed amount on one account. (account_id,
-- account_version) is unique and dense per account, so two postings that
-- read the same balance can never both commit.
CREATE TABLE ledger_entries (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id   bigint      NOT NULL REFERENCES ledger_transactions (id),
    account_id       bigint      NOT NULL REFERENCES ledger_accounts (id),
    amount           bigint      NOT NULL CHECK (amount <> 0),
    balance_after    bigint      NOT NULL,
    account_version  bigint      NOT NULL CHECK (account_version > 0),

    CONSTRAINT ledger_entries_account_version_key UNIQUE (account_id, account_version)
);
CREATE INDEX ledger_entries_transaction_idx ON ledger_entries (transaction_id, id);

-- Zero sum, enforced at commit: a deferred constraint trigger sums the
-- entries of the transaction each inserted entry belongs to, per currency.
-- Deferred, so a caller may write a transaction's entries in several
-- statements; whatever it does, an unbalanced transaction cannot commit.
-- At commit every entry's trigger runs; only the transaction's last entry
-- (by id, one index probe) sums, the others have nothing to add.
CREATE FUNCTION ledger_check_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bad record;
    txkey text;
BEGIN
    IF EXISTS (SELECT 1 FROM ledger_entries WHERE transaction_id = NEW.transaction_id AND id > NEW.id) THEN
        RETURN NULL;
    END IF;
    SELECT a.currency, sum(e.amount) AS total INTO bad
    FROM ledger_entries e
    JOIN ledger_accounts a ON a.id = e.account_id
    WHERE e.transaction_id = NEW.transaction_id
    GROUP BY a.currency
    HAVING sum(e.amount) <> 0
    LIMIT 1;
    IF FOUND THEN
        SELECT idempotency_key INTO txkey FROM ledger_transactions WHERE id = NEW.transaction_id;
        RAISE EXCEPTION 'ledger transaction % (%) does not sum to zero in %: %',
            NEW.transaction_id, txkey, bad.currency, bad.total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_entries_balanced';
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER ledger_entries_balanced
    AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();

-- The ledger is append-only: a correction is a new transaction, never an
-- edit, so every balance can be recomputed from its history.
CREATE FUNCTION ledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'check_violation', CONSTRAINT = TG_TABLE_NAME || '_append_only';
END
$$;
CREATE TRIGGER ledger_transactions_append_only
    BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_entries_append_only
    BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
