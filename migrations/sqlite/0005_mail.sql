-- SPEC section 13; see the MySQL migration of the same name for the meaning of each table.
CREATE TABLE IF NOT EXISTS mail_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    customer_id INTEGER NULL,
    email TEXT NOT NULL COLLATE NOCASE,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT NULL
);
CREATE INDEX IF NOT EXISTS mail_outbox_due ON mail_outbox (next_attempt_at);

CREATE TABLE IF NOT EXISTS mail_tokens (
    token_hash BLOB NOT NULL PRIMARY KEY,
    purpose TEXT NOT NULL,
    customer_id INTEGER NOT NULL,
    email TEXT NOT NULL COLLATE NOCASE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER NULL
);
CREATE INDEX IF NOT EXISTS mail_tokens_customer ON mail_tokens (customer_id, purpose);
CREATE INDEX IF NOT EXISTS mail_tokens_expires ON mail_tokens (expires_at);

CREATE TABLE IF NOT EXISTS email_verifications (
    customer_id INTEGER NOT NULL PRIMARY KEY,
    email TEXT NOT NULL COLLATE NOCASE,
    verified_at INTEGER NOT NULL
);
