-- SPEC rule 15.2: when the email last changed (Unix ms) and the address before the first
-- change of the current run (see migrations/mysql/0008_email_change.sql).
ALTER TABLE customers ADD COLUMN IF NOT EXISTS email_changed_at BIGINT NULL DEFAULT NULL;
ALTER TABLE customers ADD COLUMN IF NOT EXISTS email_before_change VARCHAR(320) NULL DEFAULT NULL;
