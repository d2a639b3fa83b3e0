-- subscription_plans: what a membership sells. A plan grants every
-- non-deleted content item of its creator (creator_id set) or, with
-- creator_id NULL, of its whole organization. Plans are managed through SQL
-- (docs/subscriptions.md); a plan is archived, never deleted, because
-- subscriptions and their invoices reference it.
CREATE TABLE subscription_plans (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid        NOT NULL,
    creator_id       text        CHECK (creator_id <> ''),
    name             text        NOT NULL CHECK (name <> '' AND length(name) <= 200),
    price_cents      bigint      NOT NULL CHECK (price_cents > 0),
    currency         text        NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    interval         text        NOT NULL CHECK (interval IN ('month', 'year')),
    interval_count   integer     NOT NULL DEFAULT 1,
    trial_days       integer     NOT NULL DEFAULT 0 CHECK (trial_days BETWEEN 0 AND 730),
    grace_days       integer     NOT NULL DEFAULT 3 CHECK (grace_days BETWEEN 0 AND 90),
    archived_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT subscription_plans_id_organization_key UNIQUE (id, organization_id),
    -- Stripe bills at most every three years.
    CONSTRAINT subscription_plans_interval_count CHECK (
        (interval = 'month' AND interval_count BETWEEN 1 AND 36) OR
        (interval = 'year' AND interval_count BETWEEN 1 AND 3))
);
-- Plans on offer of an organization (and of one of its creators).
CREATE INDEX subscription_plans_scope_idx ON subscription_plans (organization_id, creator_id)
    WHERE archived_at IS NULL;

-- What a plan grants is fixed once sold: subscribers paid for that scope, and
-- every invoice's split is judged for it. Sell a new plan instead.
CREATE FUNCTION subscription_plans_scope_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.organization_id IS DISTINCT FROM OLD.organization_id
       OR NEW.creator_id IS DISTINCT FROM OLD.creator_id THEN
        RAISE EXCEPTION 'subscription plan %: organization_id and creator_id cannot change; archive it and create another', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER subscription_plans_scope_fixed BEFORE UPDATE ON subscription_plans
    FOR EACH ROW EXECUTE FUNCTION subscription_plans_scope_fixed();
