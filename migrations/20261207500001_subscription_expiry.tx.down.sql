DROP INDEX IF EXISTS subscriptions_expiry_due_idx;
ALTER TABLE subscriptions DROP COLUMN IF EXISTS expired_at;
