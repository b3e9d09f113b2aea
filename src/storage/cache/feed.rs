//! Invalidation through the database, for replicas without Redis (SPEC rule 15.7): a
//! write records the keys it made stale in `cache_invalidations`, and every replica reads
//! the new rows with the period of its revocation poll and drops those keys from memory.
//! So a write on another replica, or an operator's `saga-account customer …` (a process
//! of its own), reaches this replica's in-process cache within a poll.

use std::{
    collections::HashMap,
    sync::{Arc, Weak},
    time::Duration,
};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::CachedStore;
use crate::{domain::clock::Clock, storage::store::InvalidationFeed};

/// How far back each poll reads: rows that committed a little after they were stamped, or
/// stamped by a replica whose clock is behind by up to this much, are still seen.
const LOOKBACK_MS: i64 = 10_000;
/// Rows older than this are deleted (every replica has read them long before).
const KEEP_MS: i64 = 60_000;
/// Every so many polls, one also deletes the old rows.
const FORGET_EVERY: u64 = 20;

/// The feed as one replica follows it.
pub struct DatabaseFeed {
    pub(super) store: Arc<dyn InvalidationFeed>,
    pub(super) clock: Arc<dyn Clock>,
}

impl DatabaseFeed {
    pub(super) fn now_ms(&self) -> i64 {
        i64::try_from(self.clock.now_millis()).unwrap_or(i64::MAX)
    }
}

impl CachedStore {
    /// Reads the database feed every `every` until `stop` (call once, when serving).
    pub fn follow_database_feed(
        self: &Arc<Self>,
        every: Duration,
        stop: CancellationToken,
    ) -> Option<JoinHandle<()>> {
        self.feed.as_ref()?;
        let weak: Weak<Self> = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            // Ids applied, with when they were recorded, so that each is applied once.
            let mut applied: HashMap<i64, i64> = HashMap::new();
            let mut polls = 0u64;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stop.cancelled() => return,
                }
                let Some(cache) = weak.upgrade() else { return };
                let Some(feed) = &cache.feed else { return };
                let now = feed.now_ms();
                polls += 1;
                let forget = if polls.is_multiple_of(FORGET_EVERY) {
                    now - KEEP_MS
                } else {
                    0
                };
                let since = now - LOOKBACK_MS;
                match feed.store.invalidations_since(since, forget).await {
                    Ok(rows) => {
                        let mut keys = Vec::new();
                        for (id, json) in rows {
                            if applied.insert(id, now).is_some() {
                                continue;
                            }
                            match serde_json::from_str::<Vec<String>>(&json) {
                                Ok(rendered) => keys.extend(rendered),
                                Err(_) => tracing::warn!(
                                    id,
                                    "ignoring a malformed cache invalidation row"
                                ),
                            }
                        }
                        if !keys.is_empty() {
                            cache.apply_remote_invalidation(&keys);
                        }
                        applied.retain(|_, seen| *seen >= since - LOOKBACK_MS);
                    }
                    Err(error) => tracing::debug!(%error, "reading the cache invalidation feed"),
                }
            }
        }))
    }
}
