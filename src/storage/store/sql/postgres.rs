//! What only PostgreSQL has: opening its pool (migrations under sqlx's advisory lock, which
//! PostgreSQL holds as asked) and the key of an address (rule 15.3).
//!
//! The unique index of `email` is on `lower(email)` and every lookup compares
//! `lower(email) = lower(?)`, so two spellings are one address exactly when `lower` makes
//! them one string: `lower` is the key. What `lower` folds depends on the database's
//! `LC_CTYPE` (every cased letter under a UTF-8 locale, ASCII only under `C`); an ASCII
//! address needs no round trip once `lower` was seen to fold ASCII as ASCII does, any other
//! is asked once per replica and remembered.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::sync::Arc;

use super::backend::{PgStore, PoolLimits};
use super::email_key::ADDRESS_ASCII;
use crate::{
    domain::{Email, EmailKey, clock::Clock},
    metrics::Metrics,
    storage::store::error::StoreResult,
};

impl PgStore {
    pub async fn open(
        options: PgConnectOptions,
        settings: &PoolLimits,
        metrics: Metrics,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_open)
            .min_connections(settings.max_idle.min(settings.max_open))
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL: {e}"))?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(Self::from_pool(pool, metrics, clock))
    }

    pub(super) async fn email_key_of(&self, email: &Email) -> StoreResult<EmailKey> {
        let ascii_as_ascii = *self
            .email_keys
            .lower_folds_ascii
            .get_or_try_init(|| async {
                let upper = ADDRESS_ASCII.to_ascii_uppercase();
                Ok::<_, crate::storage::store::StoreError>(
                    self.lower(&upper).await? == ADDRESS_ASCII,
                )
            })
            .await?;
        if ascii_as_ascii && email.as_str().is_ascii() {
            return Ok(EmailKey::ascii_folded(email));
        }
        if let Some(key) = self.email_keys.remembered.get(email.as_str()) {
            return Ok(key);
        }
        let key = EmailKey::from_canonical(self.lower(email.as_str()).await?);
        self.email_keys
            .remembered
            .insert(email.as_str().to_owned(), key.clone());
        Ok(key)
    }

    async fn lower(&self, text: &str) -> StoreResult<String> {
        let (lower,): (String,) = self
            .run("email_key", || {
                sqlx::query_as("SELECT lower($1)")
                    .bind(text)
                    .fetch_one(&self.pool)
            })
            .await?;
        Ok(lower)
    }
}
