-- SPEC section 10: the password column holds bcrypt (60 bytes, as the Go service wrote it)
-- and Argon2id PHC strings (about 100). Existing 60-byte values stay as they are, and the
-- Go service reads and writes the widened column the same way.
ALTER TABLE customers MODIFY bcrypted_password VARBINARY(255) NOT NULL;
