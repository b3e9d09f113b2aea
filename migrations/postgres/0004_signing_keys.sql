-- SPEC section 11: generated signing keys. The generation is unique per algorithm, so
-- that of two replicas rotating at once exactly one adds the next key.
CREATE TABLE IF NOT EXISTS signing_keys (
    kid VARCHAR(64) NOT NULL,
    alg VARCHAR(16) NOT NULL,
    generation BIGINT NOT NULL,
    private_key BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    activates_at BIGINT NOT NULL,
    PRIMARY KEY (kid),
    CONSTRAINT signing_keys_generation UNIQUE (alg, generation)
);
