-- Subscription invoices are posted to the ledger like purchases
-- (docs/ledger.md, "Invoices"): each paid invoice's split snapshot goes to
-- the parties' pending accounts, refunds and a lost dispute of its charge
-- reverse it, a dispute holds it in disputed, and the hold releases it. An
-- invoice's transactions name it in invoice_id, with causes of their own
-- whose keys the database ties to the invoice as it does for purchases
-- (an invoice id is Stripe's in_…, so its keys never meet a purchase's).
ALTER TABLE ledger_transactions ADD COLUMN invoice_id text REFERENCES subscription_invoices (id);

ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_cause_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_cause_check CHECK (cause IN (
    'purchase', 'release', 'refund', 'dispute_opened', 'dispute_won', 'dispute_lost',
    'payout_created', 'payout_paid', 'payout_failed', 'transfer_reversed',
    'invoice', 'invoice_release', 'invoice_refund', 'invoice_dispute_opened', 'invoice_dispute_won',
    'invoice_dispute_lost'));

-- Each transaction is about exactly one subject: a payout, an invoice or a
-- purchase, as its cause says.
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_subject;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_subject CHECK (
    CASE WHEN cause IN ('payout_created', 'payout_paid', 'payout_failed', 'transfer_reversed')
         THEN payout_id IS NOT NULL AND purchase_id IS NULL AND invoice_id IS NULL
         WHEN cause IN ('invoice', 'invoice_release', 'invoice_refund', 'invoice_dispute_opened',
                        'invoice_dispute_won', 'invoice_dispute_lost')
         THEN invoice_id IS NOT NULL AND purchase_id IS NULL AND payout_id IS NULL
         ELSE purchase_id IS NOT NULL AND payout_id IS NULL AND invoice_id IS NULL
    END);

ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_key_of_cause;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_key_of_cause CHECK (idempotency_key = CASE cause
    WHEN 'purchase'               THEN 'purchase:' || purchase_id::text
    WHEN 'release'                THEN 'release:' || purchase_id::text
    WHEN 'refund'                 THEN 'refund:' || purchase_id::text || ':' || amount_cents::text
    WHEN 'dispute_opened'         THEN 'dispute:' || purchase_id::text || ':opened'
    WHEN 'dispute_won'            THEN 'dispute:' || purchase_id::text || ':closed'
    WHEN 'dispute_lost'           THEN 'dispute:' || purchase_id::text || ':closed'
    WHEN 'payout_created'         THEN 'payout:' || payout_id::text
    WHEN 'payout_paid'            THEN 'payout:' || payout_id::text || ':settled'
    WHEN 'payout_failed'          THEN 'payout:' || payout_id::text || ':settled'
    WHEN 'transfer_reversed'      THEN 'payout:' || payout_id::text || ':reversed:' || amount_cents::text
    WHEN 'invoice'                THEN 'invoice:' || invoice_id
    WHEN 'invoice_release'        THEN 'release:' || invoice_id
    WHEN 'invoice_refund'         THEN 'refund:' || invoice_id || ':' || amount_cents::text
    WHEN 'invoice_dispute_opened' THEN 'dispute:' || invoice_id || ':opened'
    WHEN 'invoice_dispute_won'    THEN 'dispute:' || invoice_id || ':closed'
    WHEN 'invoice_dispute_lost'   THEN 'dispute:' || invoice_id || ':closed'
    END);

CREATE INDEX ledger_transactions_invoice_idx ON ledger_transactions (invoice_id) WHERE invoice_id IS NOT NULL;
-- Hold releases look for invoice postings older than the hold.
CREATE INDEX ledger_transactions_invoice_effective_idx ON ledger_transactions (effective_at) WHERE cause = 'invoice';
