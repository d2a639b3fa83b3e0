-- What the payout engine needs beyond the payees and payouts tables
-- (docs/payouts.md): a payee flag that stops payouts after a permanent
-- refusal until its account changes, the retry schedule of a payout, and one
-- open payout per payee and currency.

-- payouts_blocked_at / payouts_blocked_reason: set when Stripe refused a
-- transfer to the payee's account for good (account_invalid,
-- transfers_not_allowed) or the account was deauthorized; an account.updated
-- created after payouts_blocked_at clears them. A blocked payee accrues but
-- is not paid.
ALTER TABLE payees
    ADD COLUMN payouts_blocked_at     timestamptz,
    ADD COLUMN payouts_blocked_reason text,
    ADD CONSTRAINT payees_blocked_has_reason
        CHECK ((payouts_blocked_at IS NULL) = (payouts_blocked_reason IS NULL) AND payouts_blocked_reason <> '');

-- attempts is the number of the idempotency key in use: 0 before the first
-- request, 1 for payout:<id>, n for payout:<id>:<n>. It grows only when
-- Stripe's answer spent the key; next_attempt_at is then the earliest time
-- the next key may be tried, and last_error what the last answer was.
ALTER TABLE payouts
    ADD COLUMN next_attempt_at timestamptz,
    ADD COLUMN last_error      text;
COMMENT ON COLUMN payouts.attempts IS
    'number of the Stripe idempotency key in use: 0 none sent, 1 = payout:<id>, n = payout:<id>:<n>';

-- One open payout per payee and currency: two runs at once cannot both take
-- the same available balance, whatever their timing.
CREATE UNIQUE INDEX payouts_one_open_per_payee_currency
    ON payouts (payee_kind, payee_id, currency) WHERE status IN ('pending', 'in_transit');
-- `paystream payouts reconcile` reads the payouts attempted within its window.
CREATE INDEX payouts_first_attempt_idx ON payouts (first_attempt_at) WHERE first_attempt_at IS NOT NULL;
