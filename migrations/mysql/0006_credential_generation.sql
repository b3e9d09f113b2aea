-- SPEC rule 15.1: a per-customer credential generation, bumped in the transaction of every
-- credential change (password change, reset, (de)activation, logout everywhere). A login
-- reads it with the credentials and the transaction that starts its session requires it
-- unchanged, so that a change committing while the password is verified wins. A column
-- with a default: Go replicas keep reading and writing the table as they did.
ALTER TABLE customers ADD COLUMN credential_generation BIGINT NOT NULL DEFAULT 0;
