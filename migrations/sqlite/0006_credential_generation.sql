-- SPEC rule 15.1: a per-customer credential generation, bumped in the transaction of every
-- credential change (password change, reset, (de)activation, logout everywhere). A login
-- reads it with the credentials and the transaction that starts its session requires it
-- unchanged, so that a change committing while the password is verified wins.
ALTER TABLE customers ADD COLUMN credential_generation INTEGER NOT NULL DEFAULT 0;
