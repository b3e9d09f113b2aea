-- SPEC section 16; see migrations/mysql/0009_second_factor.sql for each column's meaning.
CREATE TABLE IF NOT EXISTS mfa_totp (
    customer_id BIGINT NOT NULL PRIMARY KEY,
    secret BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT NULL,
    last_step BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS mfa_recovery_codes (
    customer_id BIGINT NOT NULL,
    code_hash BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (customer_id, code_hash)
);

CREATE TABLE IF NOT EXISTS mfa_challenges (
    token_hash BYTEA NOT NULL PRIMARY KEY,
    customer_id BIGINT NOT NULL,
    client_ip VARCHAR(64) NOT NULL,
    email_key VARCHAR(1024) NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS mfa_challenges_expiry ON mfa_challenges (expires_at);
CREATE INDEX IF NOT EXISTS mfa_challenges_customer ON mfa_challenges (customer_id);
