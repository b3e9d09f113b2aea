-- SPEC section 11; see the MySQL migration of the same name.
CREATE TABLE IF NOT EXISTS signing_keys (
    kid TEXT NOT NULL PRIMARY KEY,
    alg TEXT NOT NULL,
    generation INTEGER NOT NULL,
    private_key BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    activates_at INTEGER NOT NULL,
    UNIQUE (alg, generation)
);
