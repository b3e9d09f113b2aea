//! The cache-invalidation feed (SPEC rule 15.7), the revocation feed's sibling: without
//! Redis, the keys a write made stale reach the other replicas, and those of an operator's
//! command, through the database.

use async_trait::async_trait;

use super::error::StoreResult;

#[async_trait]
pub trait InvalidationFeed: Send + Sync + 'static {
    /// Records the rendered keys a write made stale (a JSON array).
    async fn record_invalidation(&self, keys_json: &str, now_ms: i64) -> StoreResult<()>;

    /// Invalidations recorded at or after `since_ms`: `(id, keys_json)`; first deletes
    /// those recorded before `forget_before_ms` (when positive).
    async fn invalidations_since(
        &self,
        since_ms: i64,
        forget_before_ms: i64,
    ) -> StoreResult<Vec<(i64, String)>>;
}
