//! `InvalidationFeed` for both SQL stores, written once.

use async_trait::async_trait;

use super::backend::{MySqlStore, PgStore, SqliteStore, for_each_dialect};
use super::dialect::{as_written, numbered};
use crate::storage::store::{error::StoreResult, feed::InvalidationFeed};

macro_rules! feed_store {
    ($name:ident, $db:ty, begin: $begin:literal, lock: $lock:literal, id: $id:ty, sql: $q:ident, email_eq: $email_eq:literal) => {
        #[async_trait]
        impl InvalidationFeed for $name {
            async fn record_invalidation(&self, keys_json: &str, now_ms: i64) -> StoreResult<()> {
                self.run(
                    "record_invalidation",
                    || sqlx::query($q!("INSERT INTO cache_invalidations (cache_keys, created_at) VALUES (?, ?)"))
                        .bind(keys_json)
                        .bind(now_ms)
                        .execute(&self.pool),
                )
                .await
                .map(drop)
            }

            async fn invalidations_since(
                &self,
                since_ms: i64,
                forget_before_ms: i64,
            ) -> StoreResult<Vec<(i64, String)>> {
                if forget_before_ms > 0 {
                    self.run(
                        "forget_invalidations",
                        || sqlx::query($q!("DELETE FROM cache_invalidations WHERE created_at < ?"))
                            .bind(forget_before_ms)
                            .execute(&self.pool),
                    )
                    .await?;
                }
                self.run(
                    "invalidations_since",
                    || sqlx::query_as(
                        $q!("SELECT id, cache_keys FROM cache_invalidations WHERE created_at >= ? ORDER BY id"),
                    )
                    .bind(since_ms)
                    .fetch_all(&self.pool),
                )
                .await
            }
        }
    };
}

for_each_dialect!(feed_store);
