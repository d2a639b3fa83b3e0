-- content_access: one row per (user, content). For purchases it materialises
-- the one access rule (purchase.HasAccess) and is rewritten on every purchase
-- transition; other grants (subscription, complimentary, preview) are written
-- by other systems and never revoked by a purchase event.
CREATE TABLE content_access (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          text        NOT NULL CHECK (user_id <> ''),
    content_id       uuid        NOT NULL,
    organization_id  uuid        NOT NULL,
    access_type      text        NOT NULL CHECK (access_type IN ('purchased', 'subscription', 'complimentary', 'preview')),
    purchase_id      uuid        REFERENCES purchases (id),
    granted_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz,
    revoked_at       timestamptz,
    revoke_reason    text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT content_access_user_content_key UNIQUE (user_id, content_id),
    CONSTRAINT content_access_content_fkey FOREIGN KEY (content_id, organization_id)
        REFERENCES content (id, organization_id),
    CONSTRAINT content_access_purchase_link
        CHECK ((access_type = 'purchased') = (purchase_id IS NOT NULL))
);
CREATE INDEX content_access_content_idx ON content_access (content_id);
CREATE INDEX content_access_purchase_idx ON content_access (purchase_id) WHERE purchase_id IS NOT NULL;
