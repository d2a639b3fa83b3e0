-- subscription_invoices: one row per paid invoice of a subscription, with
-- the revenue split fixed at the invoice's time (status_transitions.paid_at)
-- by the same rule and agreements as purchases. The organization, creator
-- and plan are copied from the plan when the invoice is recorded, so the row
-- says alone who is owed what. Refunds and lost disputes of the invoice's
-- charge reverse the split (reversed_*), in the same proportions.
CREATE TABLE subscription_invoices (
    id                               text        PRIMARY KEY CHECK (id <> ''),
    subscription_id                  text        NOT NULL,
    plan_id                          uuid        NOT NULL,
    organization_id                  uuid        NOT NULL,
    creator_id                       text        CHECK (creator_id <> ''),
    billing_reason                   text,
    period_start                     timestamptz NOT NULL,
    period_end                       timestamptz NOT NULL,
    amount_paid_cents                bigint      NOT NULL CHECK (amount_paid_cents >= 0),
    currency                         text        NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    platform_fee_cents               bigint      NOT NULL CHECK (platform_fee_cents >= 0),
    organization_fee_cents           bigint      NOT NULL CHECK (organization_fee_cents >= 0),
    creator_payout_cents             bigint      NOT NULL CHECK (creator_payout_cents >= 0),
    platform_fee_bps                 integer     NOT NULL CHECK (platform_fee_bps BETWEEN 0 AND 10000),
    organization_fee_bps             integer     NOT NULL CHECK (organization_fee_bps BETWEEN 0 AND 10000),
    platform_agreement_id            uuid        REFERENCES organization_platform_agreements (id),
    platform_fee_config_id           uuid        REFERENCES platform_fee_config (id),
    creator_org_agreement_id         uuid        REFERENCES creator_organization_agreements (id),
    stripe_charge_id                 text        CHECK (stripe_charge_id <> ''),
    stripe_payment_intent_id         text        CHECK (stripe_payment_intent_id <> ''),
    status                           text        NOT NULL CHECK (status IN ('paid', 'partially_refunded', 'refunded')),
    paid_at                          timestamptz NOT NULL,
    refund_amount_cents              bigint      NOT NULL DEFAULT 0,
    refunded_at                      timestamptz,
    refund_reason                    text,
    stripe_refund_id                 text,
    dispute_status                   text        CHECK (dispute_status IN ('open', 'won', 'lost')),
    stripe_dispute_id                text,
    dispute_amount_cents             bigint      NOT NULL DEFAULT 0,
    disputed_at                      timestamptz,
    dispute_closed_at                timestamptz,
    reversed_platform_fee_cents      bigint      NOT NULL DEFAULT 0,
    reversed_organization_fee_cents  bigint      NOT NULL DEFAULT 0,
    reversed_creator_payout_cents    bigint      NOT NULL DEFAULT 0,
    livemode                         boolean     NOT NULL DEFAULT false,
    created_at                       timestamptz NOT NULL DEFAULT now(),
    updated_at                       timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT subscription_invoices_subscription_fkey FOREIGN KEY (subscription_id, plan_id)
        REFERENCES subscriptions (id, plan_id),
    CONSTRAINT subscription_invoices_plan_fkey FOREIGN KEY (plan_id, organization_id)
        REFERENCES subscription_plans (id, organization_id),
    CONSTRAINT subscription_invoices_period_ordered CHECK (period_end >= period_start),
    CONSTRAINT subscription_invoices_split_sums_to_amount
        CHECK (platform_fee_cents + organization_fee_cents + creator_payout_cents = amount_paid_cents),
    -- An organization plan has no single creator: the organization is paid
    -- the creators' share.
    CONSTRAINT subscription_invoices_organization_plan_pays_no_creator
        CHECK (creator_id IS NOT NULL OR creator_payout_cents = 0),
    CONSTRAINT subscription_invoices_refund_within_amount
        CHECK (refund_amount_cents BETWEEN 0 AND amount_paid_cents),
    CONSTRAINT subscription_invoices_dispute_within_amount
        CHECK (dispute_amount_cents BETWEEN 0 AND amount_paid_cents),
    CONSTRAINT subscription_invoices_status_follows_refund CHECK (status = CASE
        WHEN refund_amount_cents = 0 THEN 'paid'
        WHEN refund_amount_cents < amount_paid_cents THEN 'partially_refunded'
        ELSE 'refunded' END),
    CONSTRAINT subscription_invoices_refunded_has_refunded_at
        CHECK (status <> 'refunded' OR refunded_at IS NOT NULL),
    -- Each party gives back at most what it got, and together exactly what
    -- left: the refunds plus a lost dispute, at most the amount.
    CONSTRAINT subscription_invoices_reversal_within_split CHECK (
        reversed_platform_fee_cents BETWEEN 0 AND platform_fee_cents AND
        reversed_organization_fee_cents BETWEEN 0 AND organization_fee_cents AND
        reversed_creator_payout_cents BETWEEN 0 AND creator_payout_cents),
    CONSTRAINT subscription_invoices_reversal_sums_to_returned CHECK (
        reversed_platform_fee_cents + reversed_organization_fee_cents + reversed_creator_payout_cents =
        LEAST(amount_paid_cents, refund_amount_cents +
              CASE WHEN dispute_status = 'lost' THEN dispute_amount_cents ELSE 0 END))
);
CREATE INDEX subscription_invoices_subscription_idx ON subscription_invoices (subscription_id, period_start);
-- Revenue by organization and time, like purchases.
CREATE INDEX subscription_invoices_org_paid_idx ON subscription_invoices (organization_id, paid_at);
-- Refunds and disputes find their invoice by charge or payment intent.
CREATE UNIQUE INDEX subscription_invoices_charge_key ON subscription_invoices (stripe_charge_id)
    WHERE stripe_charge_id IS NOT NULL;
CREATE UNIQUE INDEX subscription_invoices_payment_intent_key ON subscription_invoices (stripe_payment_intent_id)
    WHERE stripe_payment_intent_id IS NOT NULL;

-- subscription_invoice_payments: which payment paid which invoice, from
-- invoice_payment.paid events. From API 2025-03-31 an invoice no longer
-- names its charge or payment intent (and a charge no longer names its
-- invoice), so this is how a refund or dispute finds its invoice. Rows are
-- kept whether or not the invoice is paystream's (or known yet): the event
-- may come first, and a row costs less than a retry.
CREATE TABLE subscription_invoice_payments (
    id                 text        PRIMARY KEY CHECK (id <> ''),
    invoice_id         text        NOT NULL CHECK (invoice_id <> ''),
    payment_intent_id  text        CHECK (payment_intent_id <> ''),
    charge_id          text        CHECK (charge_id <> ''),
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT subscription_invoice_payments_names_a_payment
        CHECK (payment_intent_id IS NOT NULL OR charge_id IS NOT NULL)
);
CREATE INDEX subscription_invoice_payments_payment_intent_idx ON subscription_invoice_payments (payment_intent_id)
    WHERE payment_intent_id IS NOT NULL;
CREATE INDEX subscription_invoice_payments_charge_idx ON subscription_invoice_payments (charge_id)
    WHERE charge_id IS NOT NULL;
