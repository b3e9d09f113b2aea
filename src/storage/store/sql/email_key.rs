//! Rule 15.3 on the SQL stores: the key of an address is derived from the database's own
//! comparison, so that two spellings that find one row have one key.
//!
//! SQLite compares `email` with `NOCASE`: ASCII letters without case, every other character
//! as it is; the key is the address with its ASCII letters in lower case.
//!
//! MySQL/MariaDB compare with the column's collation, which folds case and accents, each
//! collation its own way (`ß` is `s` in `utf8mb4_general_ci`, `ss` in `_unicode_ci`; `ø` is
//! `o` only in `_uca1400_ai_ci`). The key is the collation's weight string
//! (`WEIGHT_STRING`, equal exactly when the collation says the spellings are equal), read
//! back as ASCII when it is the weight of an ASCII address: `chén@…` and `CHEN@…` both have
//! the key `chen@…`, the Redis names a Go replica uses for that address. An ASCII address
//! needs no round trip (its weight is that of its lower-case spelling); any other is asked
//! once per replica and remembered (a weight never changes). A weight that is no ASCII
//! address is kept as `(w)` and its hex digits (no address starts with a parenthesis).

use std::collections::HashMap;

use tokio::sync::OnceCell;

use crate::domain::EmailKey;

/// The characters of an ASCII address (dot-atom local part, domain labels, `@`).
pub(super) const ADDRESS_ASCII: &str = "abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~.@";
/// How many derived keys a replica remembers.
const REMEMBERED: usize = 100_000;

/// What a store knows of its email column's collation, and the keys it derived.
pub struct EmailKeys {
    /// MySQL/MariaDB: the email column's collation.
    pub(super) collation: OnceCell<Collation>,
    /// PostgreSQL: whether `lower` folds ASCII letters as ASCII does (not under a Turkish
    /// `LC_CTYPE`, for one).
    pub(super) lower_folds_ascii: OnceCell<bool>,
    pub(super) remembered: quick_cache::sync::Cache<String, EmailKey>,
}

impl Default for EmailKeys {
    fn default() -> Self {
        Self {
            collation: OnceCell::new(),
            lower_folds_ascii: OnceCell::new(),
            remembered: quick_cache::sync::Cache::new(REMEMBERED),
        }
    }
}

/// The column's collation and, when it weighs ASCII one character at a time and without
/// case, the ASCII character of each weight.
pub(super) struct Collation {
    pub(super) name: String,
    pub(super) ascii: Option<AsciiWeights>,
}

pub(super) struct AsciiWeights {
    /// Hex digits per character.
    pub(super) width: usize,
    pub(super) chars: HashMap<String, char>,
}

impl AsciiWeights {
    /// The ASCII address whose weight `hex` is, if there is one.
    pub(super) fn address_of(&self, hex: &str) -> Option<String> {
        if self.width == 0 || !hex.len().is_multiple_of(self.width) {
            return None;
        }
        let mut address = String::with_capacity(hex.len() / self.width);
        let mut rest = hex;
        while !rest.is_empty() {
            let (unit, tail) = rest.split_at_checked(self.width)?;
            address.push(*self.chars.get(unit)?);
            rest = tail;
        }
        Some(address)
    }
}
