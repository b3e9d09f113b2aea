-- SPEC section 9. Times ending in _at are Unix milliseconds; *_exp and *_iat are Unix
-- seconds, as in tokens. A session row lives until no token of it can be presented
-- (tokens_exp), then the sweep deletes it.
CREATE TABLE IF NOT EXISTS sessions (
    id BINARY(16) NOT NULL,
    customer_id BIGINT UNSIGNED NOT NULL,
    created_at BIGINT NOT NULL,
    refreshed_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    refresh_jti BINARY(16) NOT NULL,
    refresh_iat BIGINT NOT NULL,
    refresh_exp BIGINT NOT NULL,
    previous_jti BINARY(16) NULL,
    rotated_at BIGINT NULL,
    access_exp BIGINT NOT NULL,
    tokens_exp BIGINT NOT NULL,
    user_agent VARCHAR(512) NOT NULL DEFAULT '',
    client_ip VARCHAR(64) NOT NULL DEFAULT '',
    revoked_at BIGINT NULL,
    revoke_reason VARCHAR(32) NULL,
    PRIMARY KEY (id),
    KEY sessions_customer (customer_id, revoked_at),
    KEY sessions_tokens_exp (tokens_exp)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- The revocation feed: every replica reads the new rows (revoked_at) to reject the access
-- tokens of revoked sessions until they expire (access_until); rows are swept after that.
-- Kept apart from sessions so that a deleted account's revocations outlive its rows.
CREATE TABLE IF NOT EXISTS session_revocations (
    session_id BINARY(16) NOT NULL,
    customer_id BIGINT UNSIGNED NOT NULL,
    revoked_at BIGINT NOT NULL,
    access_until BIGINT NOT NULL,
    PRIMARY KEY (session_id),
    KEY session_revocations_revoked_at (revoked_at),
    KEY session_revocations_access_until (access_until)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
