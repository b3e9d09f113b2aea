-- SPEC section 10: SQLite's BLOB column already holds hashes of any length; this migration
-- exists so that both backends have the same history.
SELECT 1;
