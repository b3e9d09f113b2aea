//! Invalidation across replicas: a write deletes the Redis keys it made stale and publishes
//! them on `invalidate_cache:account`; every replica (this one included) drops them from
//! memory. What cannot be delivered while Redis is unreachable is kept and delivered, delete
//! and publish, as soon as Redis answers again.

use std::{
    collections::BTreeSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;

use super::{
    keys::{CacheKey, INVALIDATION_CHANNEL},
    local::LocalCache,
};
use crate::{
    metrics::Metrics,
    storage::redis::{ChannelHandler, RedisClient, RedisDown},
};

/// How often kept invalidations are retried.
const RETRY_EVERY: Duration = Duration::from_millis(200);

pub struct Invalidator {
    redis: Arc<RedisClient>,
    local: LocalCache,
    /// The cache's epoch: bumped by every invalidation received, so that a load in flight
    /// here when another replica wrote does not keep what it read (rule 15.10).
    epoch: Arc<AtomicU64>,
    /// Keys whose invalidation could not be delivered yet.
    pending: Mutex<BTreeSet<CacheKey>>,
    metrics: Metrics,
}

impl Invalidator {
    /// Follows the channel on `redis` and retries kept invalidations in the background.
    pub fn start(
        redis: Arc<RedisClient>,
        local: LocalCache,
        epoch: Arc<AtomicU64>,
        metrics: Metrics,
    ) -> Arc<Self> {
        let invalidator = Arc::new(Self {
            redis: redis.clone(),
            local,
            epoch,
            pending: Mutex::new(BTreeSet::new()),
            metrics,
        });
        redis.add_handler(invalidator.clone());
        let weak = Arc::downgrade(&invalidator);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RETRY_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = redis.closed() => return,
                }
                let Some(invalidator) = weak.upgrade() else {
                    return;
                };
                if invalidator.has_pending() && redis.is_available() {
                    invalidator.flush_pending().await;
                }
            }
        });
        invalidator
    }

    /// Deletes `keys` from Redis and tells every replica to drop them; keeps what cannot be
    /// delivered now.
    pub async fn invalidate(&self, keys: &[CacheKey]) {
        if self.deliver(keys).await.is_err() {
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(keys.iter().cloned());
        }
    }

    async fn deliver(&self, keys: &[CacheKey]) -> Result<(), RedisDown> {
        let rendered: Vec<String> = keys.iter().map(CacheKey::render).collect();
        self.redis.delete(&rendered).await?;
        let message = serde_json::to_string(&rendered).unwrap_or_else(|_| "[]".into());
        self.redis.publish(INVALIDATION_CHANNEL, message).await
    }

    fn has_pending(&self) -> bool {
        !self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Delivers the invalidations kept while Redis was unreachable.
    async fn flush_pending(&self) {
        let keys: Vec<CacheKey> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *pending).into_iter().collect()
        };
        if keys.is_empty() {
            return;
        }
        self.invalidate(&keys).await;
        if !self.has_pending() {
            tracing::info!(
                keys = keys.len(),
                "delivered invalidations kept while Redis was unreachable"
            );
        }
    }
}

#[async_trait]
impl ChannelHandler for Invalidator {
    fn channel(&self) -> &'static str {
        INVALIDATION_CHANNEL
    }

    async fn on_message(&self, payload: &str) {
        let Ok(keys) = serde_json::from_str::<Vec<String>>(payload) else {
            tracing::warn!(message = %payload, "ignoring a malformed invalidation message");
            return;
        };
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.local.invalidate_rendered(&keys);
        self.metrics
            .invalidations_received
            .inc_by(keys.len() as u64);
    }

    async fn on_subscribed(&self) {
        // Anything cached while unsubscribed may have missed its invalidation.
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.local.invalidate_all();
        self.flush_pending().await;
    }
}
