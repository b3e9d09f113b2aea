-- SPEC section 10: the password column holds bcrypt (60 bytes) and Argon2id PHC strings
-- (about 100). BYTEA has no length of its own; the bound of the MySQL column is kept.
ALTER TABLE customers ADD CONSTRAINT customers_password_length
    CHECK (octet_length(bcrypted_password) <= 255);
