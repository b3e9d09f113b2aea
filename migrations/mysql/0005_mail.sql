-- SPEC section 13. New tables only: the customers table stays exactly as the Go service
-- reads and writes it, so Go replicas of a mixed fleet keep working on it.

-- The durable outbox: a request only inserts a row; one replica's sender claims it by a
-- compare-and-set on `attempts` (the row's version) and deletes it once sent or given up.
-- `customer_id` is NULL for a reset requested by email (resolved when it is sent, so
-- that known and unknown emails cost the request the same).
CREATE TABLE IF NOT EXISTS mail_outbox (
    id BIGINT NOT NULL AUTO_INCREMENT,
    kind VARCHAR(32) NOT NULL,
    customer_id BIGINT UNSIGNED NULL,
    email VARCHAR(320) NOT NULL,
    created_at BIGINT NOT NULL,
    attempts INT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error VARCHAR(512) NULL,
    PRIMARY KEY (id),
    KEY mail_outbox_due (next_attempt_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Reset and verification tokens, only as SHA-256 hashes; bound to one customer, one
-- purpose and the address the mail went to.
CREATE TABLE IF NOT EXISTS mail_tokens (
    token_hash BINARY(32) NOT NULL,
    purpose VARCHAR(16) NOT NULL,
    customer_id BIGINT UNSIGNED NOT NULL,
    email VARCHAR(320) NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT NULL,
    PRIMARY KEY (token_hash),
    KEY mail_tokens_customer (customer_id, purpose),
    KEY mail_tokens_expires (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Which address of a customer was proven theirs. The email is verified while it equals
-- customers.email, so an email changed by any replica (Go ones too) is unverified again,
-- and Go-era customers (no row) start unverified.
CREATE TABLE IF NOT EXISTS email_verifications (
    customer_id BIGINT UNSIGNED NOT NULL,
    email VARCHAR(320) NOT NULL,
    verified_at BIGINT NOT NULL,
    PRIMARY KEY (customer_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
