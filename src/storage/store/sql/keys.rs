//! `KeyStore` for both SQL stores.

use async_trait::async_trait;

use super::backend::{MySqlStore, PgStore, SqliteStore, for_each_dialect};
use super::dialect::{as_written, numbered};
use crate::storage::store::{
    error::{StoreError, StoreResult},
    keys::{KeyStore, StoredKey},
};

macro_rules! key_store {
    ($name:ident, $db:ty, begin: $begin:literal, lock: $lock:literal, id: $id:ty, sql: $q:ident, email_eq: $email_eq:literal) => {
        #[async_trait]
        impl KeyStore for $name {
            async fn signing_keys(&self, alg: &str) -> StoreResult<Vec<StoredKey>> {
                let rows: Vec<(String, String, i64, Vec<u8>, i64, i64)> = self
                    .run(
                        "signing_keys",
                        || sqlx::query_as(
                            $q!("SELECT kid, alg, generation, private_key, created_at, activates_at \
                             FROM signing_keys WHERE alg = ? ORDER BY generation"),
                        )
                        .bind(alg)
                        .fetch_all(&self.pool),
                    )
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(kid, alg, generation, private_key, created_at, activates_at)| StoredKey {
                        kid,
                        alg,
                        generation,
                        private_key,
                        created_at,
                        activates_at,
                    })
                    .collect())
            }

            async fn add_signing_key(&self, key: &StoredKey) -> StoreResult<bool> {
                let added = self
                    .run(
                        "add_signing_key",
                        || sqlx::query(
                            $q!("INSERT INTO signing_keys (kid, alg, generation, private_key, created_at, activates_at) \
                             VALUES (?, ?, ?, ?, ?, ?)"),
                        )
                        .bind(key.kid.as_str())
                        .bind(key.alg.as_str())
                        .bind(key.generation)
                        .bind(key.private_key.as_slice())
                        .bind(key.created_at)
                        .bind(key.activates_at)
                        .execute(&self.pool),
                    )
                    .await;
                match added {
                    Ok(_) => Ok(true),
                    // The generation is taken: another replica rotated first.
                    Err(StoreError::Duplicate | StoreError::IdTaken) => Ok(false),
                    Err(e) => Err(e),
                }
            }

            async fn remove_signing_key(&self, kid: &str) -> StoreResult<()> {
                self.run(
                    "remove_signing_key",
                    || sqlx::query($q!("DELETE FROM signing_keys WHERE kid = ?"))
                        .bind(kid)
                        .execute(&self.pool),
                )
                .await
                .map(drop)
            }
        }
    };
}

for_each_dialect!(key_store);
