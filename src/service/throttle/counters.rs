//! The counters' handle and the window counters (signups, mails); the lockout counters'
//! methods are in `lockout`.

use std::{sync::Arc, time::Duration};

use fred::types::Value;

use super::{keys::WindowKey, local::LocalCounters, scripts};
use crate::{domain::clock::Clock, metrics::Metrics, storage::redis::RedisClient};

/// The answer to "may this go ahead?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Refused for now; try again after this long.
    Limited {
        retry_after: Duration,
    },
}

/// The counters: Redis when it answers, this replica's own otherwise.
#[derive(Clone)]
pub struct Throttle {
    pub(super) redis: Option<Arc<RedisClient>>,
    pub(super) local: Arc<LocalCounters>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
}

pub(super) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(super) fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(i) => Some(*i),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

impl Throttle {
    pub fn new(redis: Option<Arc<RedisClient>>, clock: Arc<dyn Clock>, metrics: Metrics) -> Self {
        Self {
            redis,
            local: Arc::new(LocalCounters::default()),
            clock,
            metrics,
        }
    }

    pub(super) fn now_ms(&self) -> i64 {
        i64::try_from(self.clock.now_millis()).unwrap_or(i64::MAX)
    }

    /// Counts one hit of a window counter; `Limited` once there were more than `limit` in
    /// the window (the refused hits count too, so hammering does not help). `limit` 0 = off.
    pub async fn hit(&self, key: &WindowKey, limit: u32, window: Duration) -> Decision {
        if limit == 0 {
            return Decision::Allowed;
        }
        let key = key.render();
        let reply = match &self.redis {
            Some(redis) => redis
                .eval(
                    "throttle",
                    scripts::WINDOW,
                    vec![key.clone()],
                    vec![limit.to_string(), millis(window).to_string()],
                )
                .await
                .ok(),
            None => None,
        };
        let (hits, remaining) = match reply {
            Some(Value::Array(reply)) => (
                reply.first().and_then(as_int).unwrap_or(0),
                reply.get(1).and_then(as_int).unwrap_or(0),
            ),
            _ => self.local.hit(&key, window, self.now_ms()),
        };
        if hits > i64::from(limit) {
            Decision::Limited {
                retry_after: Duration::from_millis(u64::try_from(remaining.max(1)).unwrap_or(1)),
            }
        } else {
            Decision::Allowed
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}
