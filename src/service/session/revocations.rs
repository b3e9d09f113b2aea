//! The per-replica set of revoked sessions whose access tokens may still be presented, and
//! the feeds that fill it: this replica's own revocations at once, other replicas' through
//! Redis pub/sub when configured, and through a periodic read of the database's revocation
//! feed in every case (a lost message or a Redis outage delays a revocation by at most one
//! poll). `Auth` asks the set only: no database or Redis call per request.

use std::{
    collections::HashMap,
    hash::{BuildHasherDefault, Hasher},
    sync::{
        Arc, RwLock,
        atomic::{AtomicI64, AtomicUsize, Ordering},
    },
};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{
    domain::clock::Clock,
    domain::{RandomId, Revocation, SessionId},
    metrics::Metrics,
    storage::redis::{ChannelHandler, RedisClient},
    storage::store::SessionStore,
};

/// The channel on which replicas announce revocations (not known to Go replicas).
pub const REVOCATION_CHANNEL: &str = "revoked_sessions:account";
/// How far back a poll of the feed reads, before the latest revocation it has seen: rows
/// that committed a little after they were stamped are still seen. Each poll reads this
/// window again, so it is short.
const POLL_LOOKBACK_MS: i64 = 2_000;
/// Every so many polls, one reads much further back: a row stamped by a replica whose
/// clock is behind (by up to this much) is still seen, a little later.
const SKEW_LOOKBACK_MS: i64 = 10_000;
const SKEW_POLL_EVERY: u64 = 10;
const SHARDS: usize = 16;

/// Session ids are random: their first bytes are already a good hash.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            for (slot, byte) in word.iter_mut().zip(chunk) {
                *slot = *byte;
            }
            self.0 ^= u64::from_le_bytes(word);
        }
    }
}

type Shard = RwLock<HashMap<SessionId, i64, BuildHasherDefault<IdHasher>>>;

/// Revoked session ids, each with the time until which its access tokens could be
/// presented (Unix seconds). Sharded, so that readers on different cores rarely meet.
pub struct RevocationSet {
    shards: [Shard; SHARDS],
    len: AtomicUsize,
}

impl Default for RevocationSet {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| RwLock::new(HashMap::default())),
            len: AtomicUsize::new(0),
        }
    }
}

impl RevocationSet {
    fn shard(&self, id: &SessionId) -> &Shard {
        let [.., last] = *id.as_bytes();
        let [first, ..] = &self.shards;
        // The index is taken modulo the number of shards: never out of range.
        self.shards.get(usize::from(last) % SHARDS).unwrap_or(first)
    }

    /// Whether an access token of `id` must be refused at `now_secs`.
    pub fn contains(&self, id: &SessionId, now_secs: i64) -> bool {
        if self.len.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let shard = self.shard(id).read().unwrap_or_else(|p| p.into_inner());
        shard.get(id).is_some_and(|until| *until >= now_secs)
    }

    /// Adds a revocation; true if it was not known yet.
    pub fn insert(&self, revocation: &Revocation) -> bool {
        let mut shard = self
            .shard(&revocation.session)
            .write()
            .unwrap_or_else(|p| p.into_inner());
        match shard.insert(revocation.session, revocation.access_until) {
            None => {
                self.len.fetch_add(1, Ordering::Relaxed);
                true
            }
            Some(until) => {
                // Keep the later deadline if two feeds disagree.
                if until > revocation.access_until {
                    shard.insert(revocation.session, until);
                }
                false
            }
        }
    }

    /// Forgets revocations whose access tokens have all expired.
    pub fn purge(&self, now_secs: i64) {
        for shard in &self.shards {
            let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
            let before = shard.len();
            shard.retain(|_, until| *until >= now_secs);
            self.len.fetch_sub(before - shard.len(), Ordering::Relaxed);
        }
    }

    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a revocation was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// This replica revoked it.
    Local,
    Pubsub,
    Poll,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Local => "local",
            Source::Pubsub => "pubsub",
            Source::Poll => "poll",
        }
    }
}

/// One revocation on the channel.
#[derive(Serialize, Deserialize)]
struct Message {
    sid: String,
    until: i64,
    at: i64,
}

/// Fills the set from every feed and announces this replica's revocations.
pub struct RevocationFeed {
    set: Arc<RevocationSet>,
    store: Arc<dyn SessionStore>,
    redis: Option<Arc<RedisClient>>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    /// The latest `revoked_at` read from the database (Unix ms).
    latest_polled: AtomicI64,
    polls: std::sync::atomic::AtomicU64,
}

impl RevocationFeed {
    pub fn new(
        set: Arc<RevocationSet>,
        store: Arc<dyn SessionStore>,
        redis: Option<Arc<RedisClient>>,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
    ) -> Arc<Self> {
        let now = now_ms(clock.as_ref());
        let feed = Arc::new(Self {
            set,
            store,
            redis: redis.clone(),
            clock,
            metrics,
            latest_polled: AtomicI64::new(now),
            polls: std::sync::atomic::AtomicU64::new(0),
        });
        if let Some(redis) = redis {
            redis.add_handler(feed.clone());
        }
        feed
    }

    /// Adds revocations to the set, counting how long each took to get here.
    pub fn apply(&self, revocations: &[Revocation], source: Source) {
        let now = now_ms(self.clock.as_ref());
        for revocation in revocations {
            if self.set.insert(revocation) && source != Source::Local {
                let delay = (now - revocation.revoked_at).max(0) as f64 / 1000.0;
                self.metrics
                    .revocation_propagation
                    .with_label_values(&[source.label()])
                    .observe(delay);
            }
        }
        self.metrics.revocation_set_size.set(self.set.len() as i64);
    }

    /// This replica's revocations: into the set at once, then to the other replicas.
    pub async fn announce(&self, revocations: &[Revocation]) {
        if revocations.is_empty() {
            return;
        }
        self.apply(revocations, Source::Local);
        let Some(redis) = &self.redis else { return };
        let message: Vec<Message> = revocations
            .iter()
            .map(|r| Message {
                sid: r.session.to_string(),
                until: r.access_until,
                at: r.revoked_at,
            })
            .collect();
        let Ok(text) = serde_json::to_string(&message) else {
            return;
        };
        // Undelivered, the other replicas still read it from the database within a poll.
        let _ = redis.publish(REVOCATION_CHANNEL, text).await;
    }

    /// Loads every revocation that still matters (at start).
    pub async fn load(&self) -> crate::storage::store::StoreResult<usize> {
        let now = self.clock.now_secs();
        let revocations = self.store.live_revocations(now).await?;
        for revocation in &revocations {
            self.set.insert(revocation);
        }
        self.metrics.revocation_set_size.set(self.set.len() as i64);
        Ok(revocations.len())
    }

    /// Reads the revocations recorded since the last poll (with some overlap).
    pub async fn poll(&self) -> crate::storage::store::StoreResult<()> {
        let lookback = if self
            .polls
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SKEW_POLL_EVERY)
        {
            SKEW_LOOKBACK_MS
        } else {
            POLL_LOOKBACK_MS
        };
        let since = self.latest_polled.load(Ordering::Relaxed) - lookback;
        let revocations = self.store.revocations_since(since).await?;
        if let Some(latest) = revocations.iter().map(|r| r.revoked_at).max() {
            self.latest_polled.fetch_max(latest, Ordering::Relaxed);
        }
        self.apply(&revocations, Source::Poll);
        Ok(())
    }

    /// Drops what no longer matters.
    pub fn purge(&self) {
        self.set.purge(self.clock.now_secs());
        self.metrics.revocation_set_size.set(self.set.len() as i64);
    }
}

#[async_trait]
impl ChannelHandler for RevocationFeed {
    fn channel(&self) -> &'static str {
        REVOCATION_CHANNEL
    }

    async fn on_message(&self, payload: &str) {
        let Ok(messages) = serde_json::from_str::<Vec<Message>>(payload) else {
            tracing::warn!("ignoring a malformed revocation message");
            return;
        };
        let revocations: Vec<Revocation> = messages
            .iter()
            .filter_map(|m| {
                Some(Revocation {
                    session: RandomId::parse(&m.sid)?,
                    access_until: m.until,
                    revoked_at: m.at,
                })
            })
            .collect();
        self.apply(&revocations, Source::Pubsub);
    }

    async fn on_subscribed(&self) {
        // What was announced while unsubscribed is in the database: read it now rather
        // than at the next poll.
        if let Err(error) = self.poll().await {
            tracing::debug!(%error, "reading the revocation feed after resubscribing");
        }
    }
}

fn now_ms(clock: &dyn Clock) -> i64 {
    i64::try_from(clock.now_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revocation(until: i64) -> Revocation {
        Revocation {
            session: RandomId::new(rand::random()),
            access_until: until,
            revoked_at: 0,
        }
    }

    #[test]
    fn a_revoked_session_is_refused_until_its_tokens_expire() {
        let set = RevocationSet::default();
        let r = revocation(100);
        assert!(!set.contains(&r.session, 50));
        assert!(set.insert(&r));
        assert!(!set.insert(&r), "known already");
        assert!(set.contains(&r.session, 100));
        assert!(
            !set.contains(&r.session, 101),
            "its tokens have expired anyway"
        );
        assert!(!set.contains(&RandomId::new(rand::random()), 50));
        set.insert(&revocation(1_000));
        assert_eq!(set.len(), 2);
        set.purge(101);
        assert_eq!(set.len(), 1);
    }
}
