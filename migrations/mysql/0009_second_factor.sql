-- SPEC section 16: TOTP and recovery codes. New tables only; the customers table stays as
-- the Go service reads and writes it.

-- One TOTP secret per customer, sealed (AES-256-GCM under MFA_ENCRYPTION_KEY, bound to the
-- customer). Pending until `confirmed_at` is set. `last_step` is the last 30 s step whose
-- code was accepted: a code is accepted only for a later step (compare-and-set), so no code
-- is accepted twice, on any replica.
CREATE TABLE IF NOT EXISTS mfa_totp (
    customer_id BIGINT UNSIGNED NOT NULL,
    secret VARBINARY(128) NOT NULL,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT NULL,
    last_step BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (customer_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Recovery codes, as HMAC-SHA256 digests; a used code is deleted.
CREATE TABLE IF NOT EXISTS mfa_recovery_codes (
    customer_id BIGINT UNSIGNED NOT NULL,
    code_hash BINARY(32) NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (customer_id, code_hash)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- A password login waiting for its second step: the `mfa_token` as a SHA-256 hash, bound to
-- the customer, the client address and the credential generation the password was checked
-- against (rule 15.1); `attempts` counts codes presented (5 use it up).
CREATE TABLE IF NOT EXISTS mfa_challenges (
    token_hash BINARY(32) NOT NULL,
    customer_id BIGINT UNSIGNED NOT NULL,
    client_ip VARCHAR(64) NOT NULL,
    email_key VARCHAR(1024) NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts INT NOT NULL DEFAULT 0,
    PRIMARY KEY (token_hash),
    KEY mfa_challenges_expiry (expires_at),
    KEY mfa_challenges_customer (customer_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
