DROP INDEX IF EXISTS ledger_entries_account_id_idx;
