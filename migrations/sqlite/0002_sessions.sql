-- SPEC section 9; see the MySQL migration of the same name for the meaning of each column.
CREATE TABLE IF NOT EXISTS sessions (
    id BLOB NOT NULL PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    refreshed_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    refresh_jti BLOB NOT NULL,
    refresh_iat INTEGER NOT NULL,
    refresh_exp INTEGER NOT NULL,
    previous_jti BLOB NULL,
    rotated_at INTEGER NULL,
    access_exp INTEGER NOT NULL,
    tokens_exp INTEGER NOT NULL,
    user_agent TEXT NOT NULL DEFAULT '',
    client_ip TEXT NOT NULL DEFAULT '',
    revoked_at INTEGER NULL,
    revoke_reason TEXT NULL
);
CREATE INDEX IF NOT EXISTS sessions_customer ON sessions (customer_id, revoked_at);
CREATE INDEX IF NOT EXISTS sessions_tokens_exp ON sessions (tokens_exp);

CREATE TABLE IF NOT EXISTS session_revocations (
    session_id BLOB NOT NULL PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL,
    access_until INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS session_revocations_revoked_at ON session_revocations (revoked_at);
CREATE INDEX IF NOT EXISTS session_revocations_access_until ON session_revocations (access_until);
