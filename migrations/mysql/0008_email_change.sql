-- SPEC rule 15.2: an email change cannot become a takeover. `email_changed_at` (Unix ms)
-- is when `PUT /info/person` last changed the email: reset mails to the new address are
-- held for EMAIL_CHANGE_RESET_HOLD_SECONDS after it. `email_before_change` is the address
-- the owner had before the first change of a run of changes less than
-- EMAIL_REVERT_SECONDS apart: every revert link of that run restores it. A revert clears
-- both. Nullable with defaults: Go replicas keep inserting and updating rows as they did.
ALTER TABLE customers ADD COLUMN email_changed_at BIGINT NULL DEFAULT NULL;
ALTER TABLE customers ADD COLUMN email_before_change VARCHAR(320) NULL DEFAULT NULL;
