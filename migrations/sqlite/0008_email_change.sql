-- SPEC rule 15.2; see the MySQL migration of the same name for the meaning of each column.
ALTER TABLE customers ADD COLUMN email_changed_at INTEGER NULL DEFAULT NULL;
ALTER TABLE customers ADD COLUMN email_before_change TEXT NULL DEFAULT NULL COLLATE NOCASE;
