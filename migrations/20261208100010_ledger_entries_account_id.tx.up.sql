-- A payee's ledger entries newest first (GET /v1/payees/{kind}/{id}/ledger)
-- find, per account, the newest entry below the page's cursor with one
-- probe of this index (max(id) of the account below the cursor); the page's
-- entries are then a range of the account's versions. (account_id,
-- account_version) cannot answer "newest below an entry id" without walking
-- every newer entry of the account.
CREATE INDEX ledger_entries_account_id_idx ON ledger_entries (account_id, id);
