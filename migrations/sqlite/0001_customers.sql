-- SPEC section 4's table in SQLite types. Email matching ignores case, as MySQL's default
-- collation does, so both backends agree on what is a duplicate and what logs in.
CREATE TABLE IF NOT EXISTS customers (
    id INTEGER NOT NULL PRIMARY KEY,
    active INTEGER DEFAULT 1,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT NOT NULL COLLATE NOCASE UNIQUE,
    address TEXT NOT NULL,
    phone_number TEXT NOT NULL UNIQUE,
    bcrypted_password BLOB NOT NULL,
    updated_at INTEGER,
    created_at INTEGER
);
