//! The in-process tier: a moka cache bounded in bytes, entries expiring after
//! `LOCAL_CACHE_EXPIRATION_SECONDS`, negative entries sooner.

use std::time::{Duration, Instant};

use moka::{Expiry, future::Cache};

use super::keys::{CacheKey, Entry};

/// Per-entry bookkeeping of moka (its node, queues and timer wheel), measured roughly: 100,000
/// cached profiles took about 500 bytes each of resident memory in all.
const ENTRY_OVERHEAD_BYTES: usize = 320;

/// Keyed by `CacheKey` itself, not its Redis name: no string is built for a lookup.
#[derive(Clone)]
pub struct LocalCache {
    cache: Cache<CacheKey, Entry>,
}

struct Lifetimes {
    positive: Duration,
    negative: Duration,
}

impl Expiry<CacheKey, Entry> for Lifetimes {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        value: &Entry,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(if value.is_negative() {
            self.negative
        } else {
            self.positive
        })
    }
}

impl LocalCache {
    pub fn new(max_bytes: u64, ttl: Duration, negative_ttl: Duration) -> Self {
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &CacheKey, value: &Entry| {
                u32::try_from(
                    key.approximate_size() + value.approximate_size() + ENTRY_OVERHEAD_BYTES,
                )
                .unwrap_or(u32::MAX)
            })
            .expire_after(Lifetimes {
                positive: ttl,
                negative: negative_ttl.min(ttl),
            })
            .build();
        Self { cache }
    }

    pub async fn get(&self, key: &CacheKey) -> Option<Entry> {
        self.cache.get(key).await
    }

    /// Returns the entry, loading it with `init` if absent; concurrent callers for one key
    /// share a single `init`. The flag says whether this caller ran it.
    pub async fn get_or_init<E: Send + Sync + 'static>(
        &self,
        key: CacheKey,
        init: impl std::future::Future<Output = Result<Entry, E>>,
    ) -> (Result<Entry, std::sync::Arc<E>>, bool) {
        let ran = std::sync::atomic::AtomicBool::new(false);
        let result = self
            .cache
            .try_get_with(key, async {
                ran.store(true, std::sync::atomic::Ordering::Relaxed);
                init.await
            })
            .await;
        (result, ran.load(std::sync::atomic::Ordering::Relaxed))
    }

    pub async fn invalidate(&self, key: &CacheKey) {
        self.cache.invalidate(key).await;
    }

    /// Drops the entries named by Redis key names (from a write or the channel); names of
    /// keys this cache does not hold are ignored.
    pub async fn invalidate_rendered(&self, keys: &[String]) {
        for key in keys.iter().filter_map(|k| CacheKey::parse(k)) {
            self.cache.invalidate(&key).await;
        }
    }

    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }

    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }
}
