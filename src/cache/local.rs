//! The in-process tier: moka caches bounded in bytes. Entries live
//! `LOCAL_CACHE_EXPIRATION_SECONDS`; "does not exist" answers live in a cache of their own
//! with the shorter `NEGATIVE_CACHE_SECONDS`. Two caches with one lifetime each are cheaper
//! than one cache with a lifetime per entry (which costs a timer-wheel node per entry).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use moka::future::Cache;

use super::keys::{CacheKey, Entry};

/// Per-entry bookkeeping of moka (node, access and write queues), roughly: 100,000 cached
/// profiles took about 600 bytes each of resident memory in all.
const ENTRY_OVERHEAD_BYTES: usize = 320;

/// Keyed by `CacheKey` itself, not its Redis name: no string is built for a lookup.
#[derive(Clone)]
pub struct LocalCache {
    positive: Cache<CacheKey, Entry>,
    negative: Cache<CacheKey, Entry>,
}

fn bounded(max_bytes: u64, ttl: Duration) -> Cache<CacheKey, Entry> {
    Cache::builder()
        .max_capacity(max_bytes)
        .weigher(|key: &CacheKey, value: &Entry| {
            u32::try_from(key.approximate_size() + value.approximate_size() + ENTRY_OVERHEAD_BYTES)
                .unwrap_or(u32::MAX)
        })
        .time_to_live(ttl)
        .build()
}

impl LocalCache {
    pub fn new(max_bytes: u64, ttl: Duration, negative_ttl: Duration) -> Self {
        // Negative entries are few and short-lived: an eighth of the budget.
        let negative_bytes = (max_bytes / 8).max(1);
        Self {
            positive: bounded(max_bytes.saturating_sub(negative_bytes).max(1), ttl),
            negative: bounded(negative_bytes, negative_ttl.min(ttl)),
        }
    }

    pub async fn get(&self, key: &CacheKey) -> Option<Entry> {
        match self.positive.get(key).await {
            Some(entry) => Some(entry),
            None => self.negative.get(key).await,
        }
    }

    /// Returns the entry, loading it with `init` if absent; concurrent callers for one key
    /// share a single `init`. The flag says whether this caller ran it.
    pub async fn get_or_init<E: Send + Sync + 'static>(
        &self,
        key: CacheKey,
        init: impl std::future::Future<Output = Result<Entry, E>>,
    ) -> (Result<Entry, Arc<E>>, bool) {
        let ran = AtomicBool::new(false);
        let result = self
            .positive
            .try_get_with(key.clone(), async {
                ran.store(true, Ordering::Relaxed);
                init.await
            })
            .await;
        let ran = ran.load(Ordering::Relaxed);
        if ran
            && let Ok(entry) = &result
            && entry.is_negative()
        {
            // Loaded together with the positives (one load per key), kept with the negatives.
            self.positive.invalidate(&key).await;
            self.negative.insert(key, entry.clone()).await;
        }
        (result, ran)
    }

    pub async fn invalidate(&self, key: &CacheKey) {
        self.positive.invalidate(key).await;
        self.negative.invalidate(key).await;
    }

    /// Drops the entries named by Redis key names (from a write or the channel); names of
    /// keys this cache does not hold are ignored.
    pub async fn invalidate_rendered(&self, keys: &[String]) {
        for key in keys.iter().filter_map(|k| CacheKey::parse(k)) {
            self.invalidate(&key).await;
        }
    }

    pub async fn invalidate_all_of(&self, keys: &[CacheKey]) {
        for key in keys {
            self.invalidate(key).await;
        }
    }

    pub fn invalidate_all(&self) {
        self.positive.invalidate_all();
        self.negative.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CheckResult, CustomerId};

    #[tokio::test]
    async fn negatives_expire_sooner_than_positives() {
        let cache = LocalCache::new(1 << 20, Duration::from_secs(60), Duration::from_millis(50));
        let found = CacheKey::Check(CustomerId(1));
        let missing = CacheKey::Check(CustomerId(2));
        let (entry, ran) = cache
            .get_or_init::<()>(found.clone(), async {
                Ok(Entry::Check(Some(CheckResult { active: true })))
            })
            .await;
        assert!(ran && entry.is_ok());
        let (entry, _) = cache
            .get_or_init::<()>(missing.clone(), async { Ok(Entry::Check(None)) })
            .await;
        assert!(entry.is_ok_and(|e| e.is_negative()));
        assert!(cache.get(&missing).await.is_some_and(|e| e.is_negative()));
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(
            cache.get(&missing).await.is_none(),
            "the negative entry expired"
        );
        assert!(
            cache.get(&found).await.is_some(),
            "the positive entry is still there"
        );
        cache.invalidate(&found).await;
        assert!(cache.get(&found).await.is_none());
    }
}
