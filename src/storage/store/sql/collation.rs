//! Rule 15.3: the SQL stores derive an email's key (what `email_key` describes).

use std::collections::HashMap;

use super::backend::{MySqlStore, SqliteStore};
use super::email_key::{ADDRESS_ASCII, AsciiWeights, Collation};
use crate::{
    domain::{Email, EmailKey},
    storage::store::error::{StoreError, StoreResult},
};

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
            .run("email_key", || {
                sqlx::query_as(&sql).bind(text).fetch_one(&self.pool)
            })
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
                || sqlx::query_as(
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
