-- The outbox carries every domain family's events, each under its own subject
-- prefix on the PURCHASES stream (streams.DomainSubjectPrefixes).
ALTER TABLE outbox DROP CONSTRAINT outbox_subject_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_subject_check
    CHECK (subject ~ '^(purchases|subscriptions|payouts|payees)\.[^*> ]+$');
