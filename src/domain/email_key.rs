//! Rule 15.3, one address, one key: what every component that keys on an email (login
//! throttling, the credential cache, mail limits) keys on. Two spellings that the database
//! takes for one address have one key; the store derives it (`CustomerStore::email_key`).

use std::fmt;

use super::fields::Email;

/// The canonical key of an address: for an ASCII address under a collation that folds ASCII
/// case only, the address in lower case (the Redis names a Go replica uses too); otherwise
/// what the store derived from the database's own comparison.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailKey(String);

impl EmailKey {
    /// The key where the database folds ASCII letters and nothing else (SQLite's `NOCASE`;
    /// MySQL/MariaDB for ASCII addresses).
    pub fn ascii_folded(email: &Email) -> Self {
        Self(email.as_str().to_ascii_lowercase())
    }

    /// A key the store derived (its own canonical form).
    pub fn from_canonical(key: String) -> Self {
        Self(key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
