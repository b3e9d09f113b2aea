//! The two-tier read-through cache (SPEC section 5): in-process first, then Redis, then the
//! database, with request coalescing at both levels and invalidation next to the writes.
//!
//! `CachedStore` wraps any `CustomerStore` and is one itself, so the services do not know
//! whether a cache is there. Here: the read path (`get_or_load`) and the invalidation
//! mechanics; `customers`: the trait's reads and writes; `keys`: the typed keys and the
//! Redis values; `local`: the in-process tier; `invalidation`: the channel to other replicas.

mod customers;
mod feed;
mod invalidation;
mod keys;
mod local;

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

pub use keys::{
    CacheKey, Cacheable, EntryKind, INVALIDATION_CHANNEL, Lookup, credential_keys, lock_key,
};
pub use local::LocalCache;

use invalidation::Invalidator;

use crate::{
    domain::Email,
    metrics::{Metrics, Tier},
    storage::redis::{RedisClient, RedisDown},
    storage::store::{CustomerStore, StoreError, StoreResult},
};

/// Cache lifetimes and bounds.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub local_ttl: Duration,
    pub local_max_bytes: u64,
    pub redis_ttl: Duration,
    /// Lifetime of "does not exist" entries, in both tiers.
    pub negative_ttl: Duration,
}

/// How long a caller waits for another replica's load before loading itself.
const LOCK_WAIT: Duration = Duration::from_secs(3);
/// How long a loading lock lives if its owner dies (redsync's default in the Go service).
const LOCK_TTL: Duration = Duration::from_secs(5);
/// Invalidations are repeated once after this delay, to catch a fill that raced the write.
const INVALIDATION_REPEAT: Duration = Duration::from_millis(500);
/// Without Redis no message reaches the other replicas: their in-process entries live no
/// longer than this, so that none serves a row older than 1 s after a write (rule 15.10).
const LOCAL_TTL_WITHOUT_REDIS: Duration = Duration::from_millis(900);

/// The Redis tier: the client, and the invalidations that follow writes.
struct RedisTier {
    client: Arc<RedisClient>,
    invalidator: Arc<Invalidator>,
}

pub struct CachedStore {
    inner: Arc<dyn CustomerStore>,
    local: LocalCache,
    redis: Option<RedisTier>,
    settings: CacheSettings,
    /// Bumped by every invalidation, this replica's and (through the channel) the others';
    /// a load that saw it change may hold a stale value.
    epoch: Arc<AtomicU64>,
    metrics: Metrics,
    /// Without Redis: the database's invalidation feed, written and followed (rule 15.7).
    feed: Option<feed::DatabaseFeed>,
}

impl CachedStore {
    /// Wraps `inner`; with `redis`, follows its invalidation channel (call `redis.start()`
    /// once every user of the client is registered).
    pub fn new(
        inner: Arc<dyn CustomerStore>,
        settings: CacheSettings,
        redis: Option<Arc<RedisClient>>,
        metrics: Metrics,
    ) -> Self {
        let bound = |ttl: Duration| match &redis {
            Some(_) => ttl,
            None => ttl.min(LOCAL_TTL_WITHOUT_REDIS),
        };
        let local = LocalCache::new(
            settings.local_max_bytes,
            bound(settings.local_ttl),
            bound(settings.negative_ttl),
        );
        let epoch = Arc::new(AtomicU64::new(0));
        let redis = redis.map(|client| RedisTier {
            invalidator: Invalidator::start(
                client.clone(),
                local.clone(),
                epoch.clone(),
                metrics.clone(),
            ),
            client,
        });
        Self {
            inner,
            local,
            redis,
            settings,
            epoch,
            metrics,
            feed: None,
        }
    }

    /// Without Redis, invalidations go through the database's feed (SPEC rule 15.7):
    /// recorded after each write, and followed once `follow_database_feed` runs.
    pub fn with_database_feed(
        mut self,
        store: Arc<dyn crate::storage::store::InvalidationFeed>,
        clock: Arc<dyn crate::domain::clock::Clock>,
    ) -> Self {
        if self.redis.is_none() {
            self.feed = Some(feed::DatabaseFeed { store, clock });
        }
        self
    }

    /// Keys another replica (or the CLI) made stale: dropped here, and loads that raced
    /// them are not kept.
    fn apply_remote_invalidation(&self, keys: &[String]) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.local.invalidate_rendered(keys);
        self.metrics
            .invalidations_received
            .inc_by(keys.len() as u64);
    }

    /// The Redis client, when configured.
    pub fn redis(&self) -> Option<&Arc<RedisClient>> {
        self.redis.as_ref().map(|r| &r.client)
    }

    /// Drops every replica's cached credentials of `email` (a password reset wrote the
    /// table directly, in its own transaction).
    pub async fn invalidate_credentials(&self, email: &Email) {
        self.invalidate(self.credential_keys(email).await).await;
    }

    /// Whether cached entries can be trusted: without Redis always; with it, while the
    /// invalidation channel is live.
    pub fn is_coherent(&self) -> bool {
        self.redis.as_ref().is_none_or(|r| r.client.is_subscribed())
    }

    /// The one read-through path: local, then Redis, then `load`, filling both tiers.
    async fn get_or_load<V: Cacheable + Clone>(
        &self,
        key: CacheKey,
        load: impl Future<Output = StoreResult<Option<V>>> + Send,
    ) -> StoreResult<Option<V>> {
        if !self.is_coherent() {
            // Invalidations cannot reach us: neither tier can be trusted.
            self.metrics.cache_bypassed.inc();
            return load.await;
        }
        match self
            .local
            .get(&key)
            .map_or(Lookup::Miss, |entry| V::from_entry(&entry))
        {
            Lookup::Hit(value) => {
                self.metrics.cache_hit(Tier::Local);
                return Ok(Some(value));
            }
            Lookup::Absent => {
                self.metrics.cache_hit(Tier::Local);
                return Ok(None);
            }
            Lookup::Miss => {}
        }
        self.metrics
            .cache_misses
            .with_label_values(&[Tier::Local.label()])
            .inc();
        let epoch = self.epoch.load(Ordering::Acquire);
        let (result, loaded_here) = self
            .local
            .get_or_init(key.clone(), async {
                self.load_shared::<V>(&key.render(), load)
                    .await
                    .map(V::into_entry)
            })
            .await;
        if !loaded_here {
            self.metrics
                .cache_coalesced
                .with_label_values(&[Tier::Local.label()])
                .inc();
        }
        if self.epoch.load(Ordering::Acquire) != epoch {
            // A write happened while loading: what was loaded may predate it.
            self.local.invalidate(&key);
        }
        match V::from_entry(result?.as_ref()) {
            Lookup::Hit(value) => Ok(Some(value)),
            Lookup::Absent => Ok(None),
            Lookup::Miss => Err(StoreError::Other("cache entry of another kind".into())),
        }
    }

    /// Redis, then the database under the `mutex:<key>` lock so that one replica loads.
    async fn load_shared<V: Cacheable + Clone>(
        &self,
        key: &str,
        load: impl Future<Output = StoreResult<Option<V>>>,
    ) -> StoreResult<Option<V>> {
        let Some(RedisTier { client: redis, .. }) = &self.redis else {
            return self.load_from_database(load).await;
        };
        let lock = lock_key(key);
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        let mut waited = false;
        let mut pause = Duration::from_millis(5);
        loop {
            let found = match redis_lookup::<V>(redis, key).await {
                Ok(Lookup::Hit(value)) => Some(Some(value)),
                Ok(Lookup::Absent) => Some(None),
                Ok(Lookup::Miss) => None,
                Err(RedisDown) => return self.load_from_database(load).await,
            };
            if let Some(value) = found {
                if waited {
                    self.metrics
                        .cache_coalesced
                        .with_label_values(&[Tier::Redis.label()])
                        .inc();
                }
                self.metrics.cache_hit(Tier::Redis);
                return Ok(value);
            }
            if !waited {
                self.metrics
                    .cache_misses
                    .with_label_values(&[Tier::Redis.label()])
                    .inc();
            }
            match redis.try_lock(&lock, LOCK_TTL).await {
                Ok(Some(token)) => {
                    // Another replica may have filled the entry just before we locked.
                    match redis_lookup::<V>(redis, key).await {
                        Ok(Lookup::Hit(value)) => {
                            redis.unlock(&lock, &token).await;
                            return Ok(Some(value));
                        }
                        Ok(Lookup::Absent) => {
                            redis.unlock(&lock, &token).await;
                            return Ok(None);
                        }
                        Ok(Lookup::Miss) | Err(RedisDown) => {}
                    }
                    let epoch = self.epoch.load(Ordering::Acquire);
                    let result = self.load_from_database(load).await;
                    // A write announced while loading: what was read may predate it, and
                    // must not reach Redis, where every replica would take it.
                    if let Ok(value) = &result
                        && self.epoch.load(Ordering::Acquire) == epoch
                        && let Some(json) = V::to_redis(value)
                    {
                        redis.set(key, json, self.redis_ttl(value.is_none())).await;
                    }
                    redis.unlock(&lock, &token).await;
                    return result;
                }
                Ok(None) if tokio::time::Instant::now() < deadline => {
                    // Someone else is loading this key: wait for the entry it will write.
                    waited = true;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Ok(None) | Err(RedisDown) => return self.load_from_database(load).await,
            }
        }
    }

    async fn load_from_database<V>(
        &self,
        load: impl Future<Output = StoreResult<V>>,
    ) -> StoreResult<V> {
        self.metrics.cache_loads.inc();
        load.await
    }

    /// The Redis lifetime plus 0-9 s of jitter, so that keys filled together do not expire together.
    fn redis_ttl(&self, negative: bool) -> Duration {
        let base = if negative {
            self.settings.negative_ttl
        } else {
            self.settings.redis_ttl
        };
        base + Duration::from_secs(rand::random_range(0..10))
    }

    /// Drops `keys` here, in Redis and (through the channel) on every replica; once now and
    /// once more shortly after, to catch a concurrent load that read the old row.
    async fn invalidate(&self, keys: Vec<CacheKey>) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.local.invalidate_all_of(&keys);
        self.metrics.invalidations_sent.inc_by(keys.len() as u64);
        let Some(RedisTier { invalidator, .. }) = &self.redis else {
            if let Some(feed) = &self.feed {
                let rendered: Vec<String> = keys.iter().map(CacheKey::render).collect();
                let json = serde_json::to_string(&rendered).unwrap_or_else(|_| "[]".into());
                if let Err(error) = feed.store.record_invalidation(&json, feed.now_ms()).await {
                    tracing::warn!(%error, "cache invalidation not recorded for the other replicas");
                }
            }
            return;
        };
        invalidator.invalidate(&keys).await;
        let invalidator = invalidator.clone();
        let local = self.local.clone();
        tokio::spawn(async move {
            tokio::time::sleep(INVALIDATION_REPEAT).await;
            local.invalidate_all_of(&keys);
            invalidator.invalidate(&keys).await;
        });
    }

    /// As `invalidate`, without the delayed repeat: the invalidation after the write has one.
    async fn invalidate_without_repeat(&self, keys: &[CacheKey]) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.local.invalidate_all_of(keys);
        // Not counted: the invalidation after the write counts these keys.
        if let Some(RedisTier { invalidator, .. }) = &self.redis {
            invalidator.invalidate(keys).await;
        }
    }
}

async fn redis_lookup<V: Cacheable>(
    redis: &RedisClient,
    key: &str,
) -> Result<Lookup<V>, RedisDown> {
    Ok(redis
        .get(key)
        .await?
        .map_or(Lookup::Miss, |json| V::from_redis(&json)))
}
