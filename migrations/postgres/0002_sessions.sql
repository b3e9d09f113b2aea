-- SPEC section 9. Times ending in _at are Unix milliseconds; *_exp and *_iat are Unix
-- seconds, as in tokens. A session row lives until no token of it can be presented
-- (tokens_exp), then the sweep deletes it.
CREATE TABLE IF NOT EXISTS sessions (
    id BYTEA NOT NULL,
    customer_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    refreshed_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    refresh_jti BYTEA NOT NULL,
    refresh_iat BIGINT NOT NULL,
    refresh_exp BIGINT NOT NULL,
    previous_jti BYTEA NULL,
    rotated_at BIGINT NULL,
    access_exp BIGINT NOT NULL,
    tokens_exp BIGINT NOT NULL,
    user_agent VARCHAR(512) NOT NULL DEFAULT '',
    client_ip VARCHAR(64) NOT NULL DEFAULT '',
    revoked_at BIGINT NULL,
    revoke_reason VARCHAR(32) NULL,
    PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS sessions_customer ON sessions (customer_id, revoked_at);
CREATE INDEX IF NOT EXISTS sessions_tokens_exp ON sessions (tokens_exp);

-- The revocation feed: every replica reads the new rows (revoked_at) to reject the access
-- tokens of revoked sessions until they expire (access_until); rows are swept after that.
-- Kept apart from sessions so that a deleted account's revocations outlive its rows.
CREATE TABLE IF NOT EXISTS session_revocations (
    session_id BYTEA NOT NULL,
    customer_id BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL,
    access_until BIGINT NOT NULL,
    PRIMARY KEY (session_id)
);
CREATE INDEX IF NOT EXISTS session_revocations_revoked_at ON session_revocations (revoked_at);
CREATE INDEX IF NOT EXISTS session_revocations_access_until ON session_revocations (access_until);
