-- The table of SPEC section 4. IF NOT EXISTS: a table that the Go service created and
-- filled is adopted as it is.
CREATE TABLE IF NOT EXISTS customers (
    id BIGINT UNSIGNED NOT NULL,
    active TINYINT(1) DEFAULT 1,
    first_name VARCHAR(50) NOT NULL,
    last_name VARCHAR(50) NOT NULL,
    email VARCHAR(320) NOT NULL,
    address TEXT NOT NULL,
    phone_number VARCHAR(20) NOT NULL,
    bcrypted_password BINARY(60) NOT NULL,
    updated_at BIGINT,
    created_at BIGINT,
    PRIMARY KEY (id),
    UNIQUE KEY email (email),
    UNIQUE KEY phone_number (phone_number)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
