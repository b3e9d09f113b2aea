//! The in-process tier: a `quick_cache` table bounded in bytes, with concurrent loads of
//! one key coalesced (one caller loads, the others wait for its value).
//!
//! Entries carry their own deadline: `LOCAL_CACHE_EXPIRATION_SECONDS`, or the shorter
//! `NEGATIVE_CACHE_SECONDS` for "does not exist". An expired entry is a miss and is replaced
//! by the next load; the byte bound keeps the table's size in check in between. Compared
//! with the earlier moka cache, an entry needs no nodes or timers of its own: its slot in
//! the table is the whole of its overhead (BENCHMARKS.md has the figures).

use std::{sync::Arc, time::Duration};

use quick_cache::{Weighter, sync::Cache};
use tokio::time::Instant;

use super::keys::{CacheKey, Entry};

/// A slot's own bookkeeping in the table beyond key and value, roughly (hash, state and
/// the table's spare room).
const SLOT_OVERHEAD_BYTES: usize = 48;
/// Typical weight of an entry, to size the table up front.
const TYPICAL_ENTRY_BYTES: u64 = 256;

#[derive(Clone)]
struct Stored {
    entry: Arc<Entry>,
    expires: Instant,
}

#[derive(Clone)]
struct ByBytes;

impl Weighter<CacheKey, Stored> for ByBytes {
    fn weight(&self, key: &CacheKey, stored: &Stored) -> u64 {
        (key.approximate_size()
            + std::mem::size_of::<Stored>()
            + stored.entry.approximate_size()
            + SLOT_OVERHEAD_BYTES) as u64
    }
}

/// Keyed by `CacheKey` itself, not its Redis name: no string is built for a lookup.
#[derive(Clone)]
pub struct LocalCache {
    table: Arc<Cache<CacheKey, Stored, ByBytes>>,
    ttl: Duration,
    negative_ttl: Duration,
}

impl LocalCache {
    pub fn new(max_bytes: u64, ttl: Duration, negative_ttl: Duration) -> Self {
        let max_bytes = max_bytes.max(1);
        let items = usize::try_from(max_bytes / TYPICAL_ENTRY_BYTES).unwrap_or(usize::MAX);
        Self {
            table: Arc::new(Cache::with_weighter(items.max(16), max_bytes, ByBytes)),
            ttl,
            negative_ttl: negative_ttl.min(ttl),
        }
    }

    /// The entry, unless absent or expired.
    pub fn get(&self, key: &CacheKey) -> Option<Arc<Entry>> {
        let stored = self.table.get(key)?;
        (stored.expires > Instant::now()).then_some(stored.entry)
    }

    /// Returns the entry, loading it with `init` if absent or expired; concurrent callers
    /// for one key share a single `init` while it succeeds (after a failed load, the next
    /// waiter loads). The flag says whether this caller ran `init`.
    pub async fn get_or_init<E>(
        &self,
        key: CacheKey,
        init: impl std::future::Future<Output = Result<Entry, E>>,
    ) -> (Result<Arc<Entry>, E>, bool) {
        loop {
            match self.table.get_value_or_guard_async(&key).await {
                Ok(stored) if stored.expires > Instant::now() => return (Ok(stored.entry), false),
                Ok(_expired) => {
                    self.table.remove(&key);
                }
                Err(guard) => {
                    let result = init.await.map(|entry| {
                        let ttl = if entry.is_negative() {
                            self.negative_ttl
                        } else {
                            self.ttl
                        };
                        let entry = Arc::new(entry);
                        // A placeholder removed by an invalidation meanwhile keeps nothing.
                        let _ = guard.insert(Stored {
                            entry: entry.clone(),
                            expires: Instant::now() + ttl,
                        });
                        entry
                    });
                    return (result, true);
                }
            }
        }
    }

    pub fn invalidate(&self, key: &CacheKey) {
        self.table.remove(key);
    }

    /// Drops the entries named by Redis key names (from a write or the channel); names of
    /// keys this cache does not hold are ignored.
    pub fn invalidate_rendered(&self, keys: &[String]) {
        for key in keys.iter().filter_map(|k| CacheKey::parse(k)) {
            self.invalidate(&key);
        }
    }

    pub fn invalidate_all_of(&self, keys: &[CacheKey]) {
        for key in keys {
            self.invalidate(key);
        }
    }

    pub fn invalidate_all(&self) {
        self.table.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CheckResult, CustomerId};

    #[tokio::test(start_paused = true)]
    async fn negatives_expire_sooner_than_positives() {
        let cache = LocalCache::new(1 << 20, Duration::from_secs(60), Duration::from_secs(10));
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
        assert!(cache.get(&missing).is_some_and(|e| e.is_negative()));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(cache.get(&missing).is_none(), "the negative entry expired");
        assert!(
            cache.get(&found).is_some(),
            "the positive entry is still there"
        );
        tokio::time::advance(Duration::from_secs(50)).await;
        assert!(
            cache.get(&found).is_none(),
            "the positive entry expired too"
        );
        let (_, ran) = cache
            .get_or_init::<()>(found.clone(), async {
                Ok(Entry::Check(Some(CheckResult { active: false })))
            })
            .await;
        assert!(ran, "an expired entry is loaded again");
        cache.invalidate(&found);
        assert!(cache.get(&found).is_none());
    }

    #[tokio::test]
    async fn concurrent_loads_of_one_key_share_one_init() {
        let cache = LocalCache::new(1 << 20, Duration::from_secs(60), Duration::from_secs(10));
        let key = CacheKey::Check(CustomerId(7));
        let loads = std::sync::atomic::AtomicUsize::new(0);
        let (release, released) = tokio::sync::watch::channel(false);
        let loads = &loads;
        let calls = (0..20).map(|_| {
            let mut released = released.clone();
            cache.get_or_init::<()>(key.clone(), async move {
                loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = released.wait_for(|r| *r).await;
                Ok(Entry::Check(Some(CheckResult { active: true })))
            })
        });
        let all = futures_util::future::join_all(calls);
        let release_later = async {
            tokio::task::yield_now().await;
            let _ = release.send(true);
        };
        let (results, ()) = tokio::join!(all, release_later);
        assert!(results.iter().all(|(r, _)| r.is_ok()));
        assert_eq!(results.iter().filter(|(_, ran)| *ran).count(), 1);
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn the_byte_bound_holds() {
        let cache = LocalCache::new(64 * 1024, Duration::from_secs(60), Duration::from_secs(10));
        for id in 0..10_000 {
            cache.table.insert(
                CacheKey::Check(CustomerId(id)),
                Stored {
                    entry: Arc::new(Entry::Check(Some(CheckResult { active: true }))),
                    expires: Instant::now() + Duration::from_secs(60),
                },
            );
        }
        assert!(
            cache.table.weight() <= 64 * 1024,
            "{}",
            cache.table.weight()
        );
        assert!(cache.table.len() < 10_000);
    }
}
