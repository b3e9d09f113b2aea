-- The table of SPEC section 4, in PostgreSQL's types: ids are BIGINT (a Sonyflake id has
-- 63 bits), times stay Unix milliseconds as on MySQL, so that the statements, the rows
-- and their meaning are the same on every backend. Emails are unique regardless of case
-- (rule 15.3): the index is on lower(email), and every lookup compares lower(email).
CREATE TABLE IF NOT EXISTS customers (
    id BIGINT NOT NULL,
    active BOOLEAN DEFAULT TRUE,
    first_name VARCHAR(50) NOT NULL,
    last_name VARCHAR(50) NOT NULL,
    email VARCHAR(320) NOT NULL,
    address TEXT NOT NULL,
    phone_number VARCHAR(20) NOT NULL,
    bcrypted_password BYTEA NOT NULL,
    updated_at BIGINT,
    created_at BIGINT,
    CONSTRAINT customers_pkey PRIMARY KEY (id),
    CONSTRAINT customers_phone_number UNIQUE (phone_number)
);
CREATE UNIQUE INDEX IF NOT EXISTS customers_email ON customers (lower(email));
