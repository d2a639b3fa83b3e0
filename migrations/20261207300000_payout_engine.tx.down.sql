DROP INDEX IF EXISTS payouts_first_attempt_idx;
DROP INDEX IF EXISTS payouts_one_open_per_payee_currency;
COMMENT ON COLUMN payouts.attempts IS NULL;
ALTER TABLE payouts DROP COLUMN IF EXISTS last_error, DROP COLUMN IF EXISTS next_attempt_at;
ALTER TABLE payees
    DROP CONSTRAINT IF EXISTS payees_blocked_has_reason,
    DROP COLUMN IF EXISTS payouts_blocked_reason,
    DROP COLUMN IF EXISTS payouts_blocked_at;
