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

use super::backend::{MySqlStore, SqliteStore};
use crate::{
    domain::{Email, EmailKey},
    storage::store::error::{StoreError, StoreResult},
};

/// The characters of an ASCII address (dot-atom local part, domain labels, `@`).
const ADDRESS_ASCII: &str = "abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~.@";
/// How many derived keys a replica remembers.
const REMEMBERED: usize = 100_000;

/// What a store knows of its email column's collation, and the keys it derived.
pub struct EmailKeys {
    collation: OnceCell<Collation>,
    remembered: quick_cache::sync::Cache<String, EmailKey>,
}

impl Default for EmailKeys {
    fn default() -> Self {
        Self {
            collation: OnceCell::new(),
            remembered: quick_cache::sync::Cache::new(REMEMBERED),
        }
    }
}

/// The column's collation and, when it weighs ASCII one character at a time and without
/// case, the ASCII character of each weight.
struct Collation {
    name: String,
    ascii: Option<AsciiWeights>,
}

struct AsciiWeights {
    /// Hex digits per character.
    width: usize,
    chars: HashMap<String, char>,
}

impl AsciiWeights {
    /// The ASCII address whose weight `hex` is, if there is one.
    fn address_of(&self, hex: &str) -> Option<String> {
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

impl SqliteStore {
    /// `NOCASE`: ASCII letters without case.
    pub(super) async fn email_key_of(&self, email: &Email) -> StoreResult<EmailKey> {
        Ok(EmailKey::ascii_folded(email))
    }
}

impl MySqlStore {
    pub(super) async fn email_key_of(&self, email: &Email) -> StoreResult<EmailKey> {
        let collation = self
            .email_keys
            .collation
            .get_or_try_init(|| self.read_collation())
            .await?;
        if email.as_str().is_ascii() && collation.ascii.is_some() {
            return Ok(EmailKey::ascii_folded(email));
        }
        if let Some(key) = self.email_keys.remembered.get(email.as_str()) {
            return Ok(key);
        }
        let hex = self.weight(&collation.name, email.as_str()).await?;
        let key = match collation.ascii.as_ref().and_then(|a| a.address_of(&hex)) {
            Some(address) => EmailKey::from_canonical(address),
            None => EmailKey::from_canonical(format!("(w){}", hex.to_ascii_lowercase())),
        };
        self.email_keys
            .remembered
            .insert(email.as_str().to_owned(), key.clone());
        Ok(key)
    }

    /// The weight string of `text` under `collation`, in upper-case hex.
    async fn weight(&self, collation: &str, text: &str) -> StoreResult<String> {
        let sql =
            format!("SELECT HEX(WEIGHT_STRING(CONVERT(? USING utf8mb4) COLLATE {collation}))");
        let (hex,): (String,) = self
            .run(
                "email_key",
                sqlx::query_as(&sql).bind(text).fetch_one(&self.pool),
            )
            .await?;
        Ok(hex)
    }

    /// The email column's collation, and whether ASCII addresses can be keyed without
    /// asking: each ASCII character weighs the same in both cases, one unit of one width,
    /// no two alike, and an address weighs what its characters weigh (no contraction, no
    /// second level appended).
    async fn read_collation(&self) -> StoreResult<Collation> {
        let (name,): (String,) = self
            .run(
                "email_key",
                sqlx::query_as(
                    "SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE \
                     TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'customers' AND COLUMN_NAME = 'email'",
                )
                .fetch_one(&self.pool),
            )
            .await?;
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(StoreError::Other(
                format!("unexpected collation {name:?}").into(),
            ));
        }
        let mut chars = HashMap::new();
        let mut widths = std::collections::BTreeSet::new();
        let mut alike = false;
        for c in ADDRESS_ASCII.chars() {
            let lower = self.weight(&name, &c.to_string()).await?;
            let upper = self
                .weight(&name, &c.to_ascii_uppercase().to_string())
                .await?;
            alike |= lower != upper || lower.is_empty();
            widths.insert(lower.len());
            alike |= chars.insert(lower, c).is_some();
        }
        let sample = "ch.a-z_09@x.co";
        let whole = self.weight(&name, sample).await?;
        let ascii = match (alike, widths.len()) {
            (false, 1) => {
                let weights = AsciiWeights {
                    width: widths.first().copied().unwrap_or(0),
                    chars,
                };
                (weights.address_of(&whole).as_deref() == Some(sample)).then_some(weights)
            }
            _ => None,
        };
        if ascii.is_none() {
            tracing::warn!(
                collation = %name,
                "the email column's collation does not weigh ASCII addresses as their \
                 characters: every email key is asked of the database"
            );
        }
        Ok(Collation { name, ascii })
    }
}
