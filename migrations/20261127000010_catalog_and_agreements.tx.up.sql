-- Catalog and revenue-split agreements. Money is integer minor units; fees are
-- basis points (0–10000). Agreement windows are half-open [effective_from,
-- effective_until), NULL until = open ended, and may not overlap for the same
-- party (exclusion constraints), so "the agreement in force at t" is unique.

-- btree_gist lets an exclusion constraint combine equality on ids with range
-- overlap. It is a trusted extension: a database owner may create it.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE content (
    id               uuid        PRIMARY KEY,
    creator_id       text        NOT NULL CHECK (creator_id <> ''),
    organization_id  uuid        NOT NULL,
    price_cents      bigint      NOT NULL CHECK (price_cents >= 0),
    currency         text        NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    visibility       text        NOT NULL DEFAULT 'public'
                                 CHECK (visibility IN ('public', 'unlisted', 'private')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz,
    -- Target of purchases' composite foreign key: a purchase's content must
    -- belong to the purchase's organization.
    CONSTRAINT content_id_organization_key UNIQUE (id, organization_id)
);
CREATE INDEX content_organization_idx ON content (organization_id) WHERE deleted_at IS NULL;
CREATE INDEX content_creator_idx ON content (creator_id) WHERE deleted_at IS NULL;

CREATE TABLE platform_fee_config (
    id                       uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    platform_fee_percentage  integer     NOT NULL CHECK (platform_fee_percentage BETWEEN 0 AND 10000),
    effective_from           timestamptz NOT NULL,
    effective_until          timestamptz CHECK (effective_until IS NULL OR effective_until > effective_from),
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT platform_fee_config_no_overlap
        EXCLUDE USING gist (tstzrange(effective_from, effective_until, '[)') WITH &&)
);

CREATE TABLE organization_platform_agreements (
    id                       uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id          uuid        NOT NULL,
    platform_fee_percentage  integer     NOT NULL CHECK (platform_fee_percentage BETWEEN 0 AND 10000),
    effective_from           timestamptz NOT NULL,
    effective_until          timestamptz CHECK (effective_until IS NULL OR effective_until > effective_from),
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT organization_platform_agreements_no_overlap
        EXCLUDE USING gist (organization_id WITH =, tstzrange(effective_from, effective_until, '[)') WITH &&)
);

CREATE TABLE creator_organization_agreements (
    id                          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    creator_id                  text        NOT NULL CHECK (creator_id <> ''),
    organization_id             uuid        NOT NULL,
    organization_fee_percentage integer     NOT NULL CHECK (organization_fee_percentage BETWEEN 0 AND 10000),
    effective_from              timestamptz NOT NULL,
    effective_until             timestamptz CHECK (effective_until IS NULL OR effective_until > effective_from),
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT creator_organization_agreements_no_overlap
        EXCLUDE USING gist (creator_id WITH =, organization_id WITH =,
                            tstzrange(effective_from, effective_until, '[)') WITH &&)
);
