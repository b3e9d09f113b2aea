-- SPEC section 11: generated signing keys. The generation is unique per algorithm, so
-- that of two replicas rotating at once exactly one adds the next key.
CREATE TABLE IF NOT EXISTS signing_keys (
    kid VARCHAR(64) NOT NULL,
    alg VARCHAR(16) NOT NULL,
    generation BIGINT NOT NULL,
    private_key VARBINARY(512) NOT NULL,
    created_at BIGINT NOT NULL,
    activates_at BIGINT NOT NULL,
    PRIMARY KEY (kid),
    UNIQUE KEY signing_keys_generation (alg, generation)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
