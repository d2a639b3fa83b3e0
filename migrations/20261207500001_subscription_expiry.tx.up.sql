-- expired_at: when paystream announced (subscriptions.expired) that the
-- subscription's latest access ended; NULL while that end is still to be
-- announced. The processor sets it when an event takes access away, the
-- sweeper when access_until passes; it returns to NULL when access is
-- granted again after the announcement (docs/subscriptions.md, "Expiry").
ALTER TABLE subscriptions ADD COLUMN expired_at timestamptz;

-- The sweeper's work list: access that ends (or ended) and is not announced
-- yet, by when it ends, so "access_until <= now" is a range scan of it.
CREATE INDEX subscriptions_expiry_due_idx ON subscriptions (access_until)
    WHERE expired_at IS NULL AND access_until IS NOT NULL;
