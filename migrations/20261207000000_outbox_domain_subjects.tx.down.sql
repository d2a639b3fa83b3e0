ALTER TABLE outbox DROP CONSTRAINT outbox_subject_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_subject_check CHECK (subject LIKE 'purchases.%');
