-- SPEC rule 15.7: without Redis, a write's cache invalidations reach the other replicas
-- (and those of an operator's `saga-account customer …`, a process of its own) through
-- the database: each replica reads the new rows with its revocation poll and drops the
-- keys (the rendered Redis names, a JSON array) from its in-process cache. Rows are
-- deleted a minute later.
CREATE TABLE IF NOT EXISTS cache_invalidations (
    id BIGINT NOT NULL AUTO_INCREMENT,
    cache_keys TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (id),
    KEY cache_invalidations_created_at (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
