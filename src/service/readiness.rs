//! Readiness: whether this replica can serve (the database answers, it is not shutting
//! down), with Redis reported but never decisive. `/readyz` asks for a fresh answer; the
//! follower re-checks every second, publishes the answer for the gRPC health service and
//! keeps the `dependency_up` gauges current.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{
    metrics::{Dependency, Metrics},
    storage::cache::CachedStore,
    storage::store::CustomerStore,
};

/// How long a database ping may take before the database counts as unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the follower re-checks.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ready,
    Unready,
}

/// The state of one dependency, as `/readyz` words it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub enum DependencyState {
    #[serde(rename = "ok")]
    Ok,
    #[serde(rename = "unreachable")]
    Unreachable,
    /// Reachable in part, or not trusted yet (Redis: the invalidation channel is down).
    #[serde(rename = "degraded")]
    Degraded,
    #[serde(rename = "not configured")]
    NotConfigured,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Readiness {
    pub status: Status,
    pub checks: Checks,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Checks {
    pub database: DependencyState,
    pub redis: DependencyState,
    pub shutting_down: bool,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.status == Status::Ready
    }
}

/// What readiness is made of. Cheap to clone.
#[derive(Clone)]
pub struct Health {
    cache: Arc<CachedStore>,
    shutting_down: Arc<AtomicBool>,
    metrics: Metrics,
}

impl Health {
    pub fn new(cache: Arc<CachedStore>, metrics: Metrics) -> Self {
        Self {
            cache,
            shutting_down: Arc::new(AtomicBool::new(false)),
            metrics,
        }
    }

    /// From now on, readiness says no, so that load balancers drain this replica.
    pub fn start_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// A fresh answer: pings the database.
    pub async fn check(&self) -> Readiness {
        let database = match tokio::time::timeout(PING_TIMEOUT, self.cache.ping()).await {
            Ok(Ok(())) => DependencyState::Ok,
            _ => DependencyState::Unreachable,
        };
        let redis = match self.cache.redis() {
            None => DependencyState::NotConfigured,
            Some(r) if r.is_reachable() && r.is_subscribed() => DependencyState::Ok,
            Some(_) => DependencyState::Degraded,
        };
        let up = |state| i64::from(state == DependencyState::Ok);
        self.metrics
            .dependency_up
            .with_label_values(&[Dependency::Database.label()])
            .set(up(database));
        if redis != DependencyState::NotConfigured {
            self.metrics
                .dependency_up
                .with_label_values(&[Dependency::Redis.label()])
                .set(up(redis));
        }
        let shutting_down = self.shutting_down.load(Ordering::Acquire);
        let ready = database == DependencyState::Ok && !shutting_down;
        Readiness {
            status: if ready {
                Status::Ready
            } else {
                Status::Unready
            },
            checks: Checks {
                database,
                redis,
                shutting_down,
            },
        }
    }

    /// Checks now, then every second until `stop`, publishing whether the replica is
    /// ready (the first answer is known before this returns).
    pub async fn follow(&self, stop: CancellationToken) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(self.check().await.is_ready());
        let health = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(FOLLOW_EVERY) => {}
                    () = stop.cancelled() => return,
                }
                let ready = health.check().await.is_ready();
                tx.send_if_modified(|last| std::mem::replace(last, ready) != ready);
            }
        });
        rx
    }
}
