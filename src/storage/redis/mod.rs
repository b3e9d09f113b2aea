//! The Redis client shared by every part of the service that uses Redis (the cache tier,
//! and anything that needs counters or a channel shared by replicas): commands behind a
//! breaker, and pub/sub channels dispatched to their handlers.
//!
//! Redis is never required. The service starts without it and connects when it appears
//! (`connection`); while it is unreachable, calls fail at once (a breaker) and callers fall
//! back to what they do without Redis. A channel's messages can be trusted to arrive only
//! while the subscription is live (`is_subscribed`); handlers are told after every
//! (re)subscription, since messages may have been missed while it was down.

mod connection;

use std::{
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use fred::{
    clients::SubscriberClient,
    prelude::{ClientLike, KeysInterface, LuaInterface, Pool, PubsubInterface},
    types::{Expiration, SetOptions, Value},
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{domain::Secret, metrics::Metrics, storage::breaker::Breaker};

/// Releases a lock only if it is still ours (redsync's script, so Go replicas agree).
const UNLOCK_SCRIPT: &str = "if redis.call(\"get\", KEYS[1]) == ARGV[1] then return redis.call(\"del\", KEYS[1]) else return 0 end";
/// A command slower than this is treated as a failure: callers fall back.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(300);
/// How long Redis is left alone after a failure.
const BREAKER_PAUSE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub addrs: Vec<String>,
    pub password: Option<Secret>,
    pub db: u32,
    pub pool_size: usize,
    pub max_retries: u32,
}

/// Redis could not be used for this call; the caller falls back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisDown;

/// What listens on a channel.
#[async_trait]
pub trait ChannelHandler: Send + Sync + 'static {
    fn channel(&self) -> &'static str;
    async fn on_message(&self, payload: &str);
    /// The channel is (again) subscribed; messages sent while it was not were lost.
    async fn on_subscribed(&self);
}

struct Connection {
    pool: Pool,
    subscriber: SubscriberClient,
}

pub struct RedisClient {
    settings: RedisSettings,
    conn: OnceLock<Connection>,
    breaker: Breaker,
    handlers: Mutex<Vec<Arc<dyn ChannelHandler>>>,
    /// True while every handler's channel is subscribed.
    subscribed: AtomicBool,
    metrics: Metrics,
    stop: CancellationToken,
}

impl RedisClient {
    /// Declares the Redis families at 0, with or without Redis, so that the dashboard's
    /// and the alerts' queries find them on every replica (0 errors, not "no data"); that
    /// Redis is not configured shows as the absence of `account_dependency_up{dependency="redis"}`.
    pub fn declare_metrics(metrics: &Metrics) {
        for operation in ["get", "set", "lock", "unlock", "del", "publish"] {
            metrics.redis_errors.with_label_values(&[operation]);
        }
    }

    /// A client that is not connected yet: register handlers, then `start`.
    pub fn new(settings: RedisSettings, metrics: Metrics) -> Arc<Self> {
        Self::declare_metrics(&metrics);
        Arc::new(Self {
            settings,
            conn: OnceLock::new(),
            breaker: Breaker::new(BREAKER_PAUSE),
            handlers: Mutex::new(Vec::new()),
            subscribed: AtomicBool::new(false),
            metrics,
            stop: CancellationToken::new(),
        })
    }

    /// Adds a channel to follow; takes effect at the next (re)subscription.
    pub fn add_handler(&self, handler: Arc<dyn ChannelHandler>) {
        self.handlers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handler);
    }

    fn handlers(&self) -> Vec<Arc<dyn ChannelHandler>> {
        self.handlers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Starts connecting and listening in the background and returns at once; the task
    /// ends when the client is closed.
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.clone().connect_and_listen())
    }

    /// Whether every channel is subscribed, so that its messages arrive.
    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    /// Waits until the channels are subscribed; false after `limit`.
    pub async fn wait_until_subscribed(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.is_subscribed() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Whether commands currently reach Redis (for readiness).
    pub fn is_reachable(&self) -> bool {
        self.conn.get().is_some_and(|c| c.pool.is_connected()) && !self.breaker.is_open()
    }

    /// Whether the breaker lets calls through now.
    pub fn is_available(&self) -> bool {
        self.conn.get().is_some() && !self.breaker.is_open()
    }

    fn pool(&self) -> Result<&Pool, RedisDown> {
        match self.conn.get() {
            Some(conn) if !self.breaker.is_open() => Ok(&conn.pool),
            _ => Err(RedisDown),
        }
    }

    fn failed(&self, operation: &'static str, error: &fred::error::Error) -> RedisDown {
        tracing::debug!(operation, %error, "redis operation failed");
        self.metrics
            .redis_errors
            .with_label_values(&[operation])
            .inc();
        self.breaker.trip();
        RedisDown
    }

    fn succeeded(&self) {
        self.breaker.reset();
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, RedisDown> {
        let pool = self.pool()?;
        let value: Value = pool
            .get(key)
            .instrument(client_span("redis GET"))
            .await
            .map_err(|e| self.failed("get", &e))?;
        self.succeeded();
        Ok(value.as_string())
    }

    /// Sets `key` with a lifetime; a failure only counts (a cache fill is best effort).
    pub async fn set(&self, key: &str, value: String, ttl: Duration) {
        let Ok(pool) = self.pool() else { return };
        let secs = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        if let Err(e) = pool
            .set::<Value, _, _>(key, value, Some(Expiration::EX(secs)), None, false)
            .instrument(client_span("redis SET"))
            .await
        {
            self.failed("set", &e);
        }
    }

    /// `SET key token NX PX ttl`: takes a lock if free; returns the owner token.
    pub async fn try_lock(&self, lock: &str, ttl: Duration) -> Result<Option<String>, RedisDown> {
        let pool = self.pool()?;
        let token = format!("{:032x}", rand::random::<u128>());
        let millis = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let reply: Value = pool
            .set(
                lock,
                token.as_str(),
                Some(Expiration::PX(millis)),
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(|e| self.failed("lock", &e))?;
        Ok((!reply.is_null()).then_some(token))
    }

    /// Releases a lock if it is still ours.
    pub async fn unlock(&self, lock: &str, token: &str) {
        let Ok(pool) = self.pool() else { return };
        if let Err(e) = pool
            .eval::<Value, _, _, _>(UNLOCK_SCRIPT, vec![lock], vec![token])
            .await
        {
            self.failed("unlock", &e);
        }
    }

    /// Deletes every key (one DEL per key: in a cluster they live in different slots).
    pub async fn delete(&self, keys: &[String]) -> Result<(), RedisDown> {
        let pool = self.pool()?;
        let deletes = keys.iter().map(|key| pool.del::<Value, _>(key.as_str()));
        for result in futures_util::future::join_all(deletes).await {
            result.map_err(|e| self.failed("del", &e))?;
        }
        Ok(())
    }

    pub async fn publish(&self, channel: &'static str, message: String) -> Result<(), RedisDown> {
        let pool = self.pool()?;
        pool.next()
            .publish::<Value, _, _>(channel, message)
            .await
            .map_err(|e| self.failed("publish", &e))?;
        Ok(())
    }

    /// Runs a Lua script on the node that owns `keys` (which must share one slot).
    pub async fn eval(
        &self,
        operation: &'static str,
        script: &'static str,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<Value, RedisDown> {
        let pool = self.pool()?;
        let value = pool
            .eval::<Value, _, _, _>(script, keys, args)
            .await
            .map_err(|e| self.failed(operation, &e))?;
        self.succeeded();
        Ok(value)
    }

    /// Completes once `close` was called.
    pub fn closed(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.stop.cancelled()
    }

    pub async fn close(&self) {
        self.stop.cancel();
        if let Some(conn) = self.conn.get() {
            let _ = conn.subscriber.quit().await;
            let _ = conn.pool.quit().await;
        }
    }
}

fn client_span(name: &'static str) -> tracing::Span {
    tracing::info_span!(
        "redis",
        otel.name = name,
        otel.kind = "client",
        db.system = "redis"
    )
}
