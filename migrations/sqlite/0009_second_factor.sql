-- SPEC section 16; see migrations/mysql/0009_second_factor.sql for each column's meaning.
CREATE TABLE IF NOT EXISTS mfa_totp (
    customer_id INTEGER NOT NULL PRIMARY KEY,
    secret BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    confirmed_at INTEGER NULL,
    last_step INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS mfa_recovery_codes (
    customer_id INTEGER NOT NULL,
    code_hash BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (customer_id, code_hash)
);

CREATE TABLE IF NOT EXISTS mfa_challenges (
    token_hash BLOB NOT NULL PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    client_ip TEXT NOT NULL,
    email_key TEXT NOT NULL,
    generation INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS mfa_challenges_expiry ON mfa_challenges (expires_at);
CREATE INDEX IF NOT EXISTS mfa_challenges_customer ON mfa_challenges (customer_id);
