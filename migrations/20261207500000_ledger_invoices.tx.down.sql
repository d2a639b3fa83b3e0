-- The ledger is append-only: rolling back past invoice postings would have
-- to delete money records and leave stored balances wrong, so it is refused.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM ledger_transactions WHERE invoice_id IS NOT NULL) THEN
        RAISE EXCEPTION 'ledger_transactions holds invoice postings; the ledger is append-only and cannot roll them back';
    END IF;
END
$$;
DROP INDEX IF EXISTS ledger_transactions_invoice_effective_idx;
DROP INDEX IF EXISTS ledger_transactions_invoice_idx;
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_key_of_cause;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_key_of_cause CHECK (idempotency_key = CASE cause
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
    END);
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_subject;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_subject CHECK (
    CASE WHEN cause IN ('payout_created', 'payout_paid', 'payout_failed', 'transfer_reversed')
         THEN payout_id IS NOT NULL AND purchase_id IS NULL
         ELSE purchase_id IS NOT NULL AND payout_id IS NULL
    END);
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_cause_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_cause_check CHECK (cause IN (
    'purchase', 'release', 'refund', 'dispute_opened', 'dispute_won', 'dispute_lost',
    'payout_created', 'payout_paid', 'payout_failed', 'transfer_reversed'));
ALTER TABLE ledger_transactions DROP COLUMN invoice_id;
