-- SPEC rule 15.7: without Redis, a write's cache invalidations reach the other replicas
-- (and those of an operator's `saga-account customer …`) through the database; each
-- replica reads the new rows with its revocation poll. Rows are deleted a minute later.
CREATE TABLE IF NOT EXISTS cache_invalidations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cache_keys TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS cache_invalidations_created_at ON cache_invalidations (created_at);
