-- SPEC rule 15.1: a per-customer credential generation, bumped in the transaction of every
-- credential change and required unchanged by the transaction that starts a session.
ALTER TABLE customers ADD COLUMN IF NOT EXISTS credential_generation BIGINT NOT NULL DEFAULT 0;
