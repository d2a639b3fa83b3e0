-- Purchases: one row per checkout session, with the revenue split fixed when
-- the purchase completed. The lifecycle (docs/lifecycle.md) moves status
-- forward only; dispute_status is a separate flag because a won dispute
-- returns the purchase to where it was.
CREATE TABLE purchases (
    id                          uuid        PRIMARY KEY,
    customer_id                 text        NOT NULL CHECK (customer_id <> ''),
    content_id                  uuid        NOT NULL,
    organization_id             uuid        NOT NULL,
    amount_paid_cents           bigint      NOT NULL CHECK (amount_paid_cents >= 0),
    currency                    text        NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    platform_fee_cents          bigint      NOT NULL CHECK (platform_fee_cents >= 0),
    organization_fee_cents      bigint      NOT NULL CHECK (organization_fee_cents >= 0),
    creator_payout_cents        bigint      NOT NULL CHECK (creator_payout_cents >= 0),
    platform_fee_bps            integer     NOT NULL CHECK (platform_fee_bps BETWEEN 0 AND 10000),
    organization_fee_bps        integer     NOT NULL CHECK (organization_fee_bps BETWEEN 0 AND 10000),
    platform_agreement_id       uuid        REFERENCES organization_platform_agreements (id),
    platform_fee_config_id      uuid        REFERENCES platform_fee_config (id),
    creator_org_agreement_id    uuid        REFERENCES creator_organization_agreements (id),
    stripe_checkout_session_id  text        NOT NULL CHECK (stripe_checkout_session_id <> ''),
    stripe_payment_intent_id    text        CHECK (stripe_payment_intent_id <> ''),
    stripe_charge_id            text        CHECK (stripe_charge_id <> ''),
    stripe_customer_id          text,
    livemode                    boolean     NOT NULL DEFAULT false,
    status                      text        NOT NULL CHECK (status IN
                                    ('pending', 'completed', 'failed', 'partially_refunded', 'refunded', 'dispute_lost')),
    purchased_at                timestamptz,
    failed_at                   timestamptz,
    failure_reason              text,
    refunded_at                 timestamptz,
    refund_amount_cents         bigint      NOT NULL DEFAULT 0,
    refund_reason               text,
    stripe_refund_id            text,
    dispute_status              text        CHECK (dispute_status IN ('open', 'won', 'lost')),
    stripe_dispute_id           text,
    disputed_at                 timestamptz,
    dispute_closed_at           timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    deleted_at                  timestamptz,

    CONSTRAINT purchases_content_fkey FOREIGN KEY (content_id, organization_id)
        REFERENCES content (id, organization_id),
    CONSTRAINT purchases_split_sums_to_amount
        CHECK (platform_fee_cents + organization_fee_cents + creator_payout_cents = amount_paid_cents),
    CONSTRAINT purchases_refund_within_amount
        CHECK (refund_amount_cents BETWEEN 0 AND amount_paid_cents),
    CONSTRAINT purchases_checkout_session_key UNIQUE (stripe_checkout_session_id),
    CONSTRAINT purchases_payment_intent_key UNIQUE (stripe_payment_intent_id),
    -- Every state past pending was reached through a payment.
    CONSTRAINT purchases_paid_has_purchased_at
        CHECK (status IN ('pending', 'failed') OR purchased_at IS NOT NULL),
    CONSTRAINT purchases_refunded_has_refunded_at
        CHECK (status <> 'refunded' OR refunded_at IS NOT NULL),
    CONSTRAINT purchases_lost_has_dispute
        CHECK (status <> 'dispute_lost' OR dispute_status = 'lost')
);

-- Revenue by organization / status / date.
CREATE INDEX purchases_org_status_purchased_idx ON purchases (organization_id, status, purchased_at)
    WHERE deleted_at IS NULL;
-- The access rule reads every purchase of one (customer, content).
CREATE INDEX purchases_customer_content_idx ON purchases (customer_id, content_id);
CREATE INDEX purchases_content_idx ON purchases (content_id);
-- Refunds and disputes that carry no payment intent are matched by charge.
CREATE INDEX purchases_charge_idx ON purchases (stripe_charge_id) WHERE stripe_charge_id IS NOT NULL;
CREATE INDEX purchases_created_idx ON purchases (created_at);
