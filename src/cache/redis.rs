//! The Redis tier: connection management, reads and writes of cache entries, the loading
//! lock, and the invalidation channel.
//!
//! Redis is never required. The service starts without it and connects when it appears;
//! while it is unreachable, calls fail at once (a breaker) and the cache falls back to the
//! database; invalidations that could not be delivered are kept and delivered once Redis is
//! back. The in-process tier is only trusted while the invalidation channel is subscribed:
//! every (re)subscription starts from an empty in-process cache, because messages may have
//! been missed while it was down.

use std::{
    collections::BTreeSet,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use fred::{
    clients::SubscriberClient,
    prelude::{
        Builder, ClientLike, ClientState, Config, EventInterface, KeysInterface, LuaInterface,
        Pool, PubsubInterface, ReconnectPolicy, ServerConfig,
    },
    types::{Expiration, InfoKind, SetOptions, Value},
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{keys::INVALIDATION_CHANNEL, local::LocalCache};
use crate::{breaker::Breaker, config::Secret, metrics::Metrics};

/// Releases a lock only if it is still ours (redsync's script, so Go replicas agree).
const UNLOCK_SCRIPT: &str = "if redis.call(\"get\", KEYS[1]) == ARGV[1] then return redis.call(\"del\", KEYS[1]) else return 0 end";
/// How long a loading lock lives if its owner dies (redsync's default in the Go service).
const LOCK_TTL_MS: i64 = 5_000;
/// A cache lookup slower than this is treated as a failure: the database answers instead.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(300);
/// How long Redis is left alone after a failure.
const BREAKER_PAUSE: Duration = Duration::from_secs(1);
/// Invalidations are repeated once after this delay, to catch a fill that raced the write.
pub const INVALIDATION_REPEAT: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub addrs: Vec<String>,
    pub password: Option<Secret>,
    pub db: u32,
    pub pool_size: usize,
    pub max_retries: u32,
}

/// Redis could not be used for this call; the caller goes to the database.
#[derive(Debug)]
pub struct RedisDown;

struct Connection {
    pool: Pool,
    subscriber: SubscriberClient,
}

pub struct RedisTier {
    settings: RedisSettings,
    conn: OnceLock<Connection>,
    breaker: Breaker,
    /// Keys whose invalidation could not be delivered yet.
    pending: Mutex<BTreeSet<String>>,
    /// True while the invalidation channel is subscribed.
    coherent: AtomicBool,
    local: LocalCache,
    metrics: Metrics,
    stop: CancellationToken,
}

impl RedisTier {
    /// Starts connecting in the background and returns at once.
    pub fn start(settings: RedisSettings, local: LocalCache, metrics: Metrics) -> Arc<Self> {
        let tier = Arc::new(Self {
            settings,
            conn: OnceLock::new(),
            breaker: Breaker::new(BREAKER_PAUSE),
            pending: Mutex::new(BTreeSet::new()),
            coherent: AtomicBool::new(false),
            local,
            metrics,
            stop: CancellationToken::new(),
        });
        tokio::spawn(tier.clone().connect_and_listen());
        tier
    }

    /// Whether in-process entries can be trusted: the invalidation channel is live.
    pub fn is_coherent(&self) -> bool {
        self.coherent.load(Ordering::Acquire)
    }

    /// Waits until the invalidation channel is live; false after `limit`.
    pub async fn wait_until_coherent(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.is_coherent() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Whether data commands currently reach Redis (for readiness).
    pub fn is_reachable(&self) -> bool {
        self.conn.get().is_some_and(|c| c.pool.is_connected()) && !self.breaker.is_open()
    }

    fn pool(&self) -> Result<&Pool, RedisDown> {
        match self.conn.get() {
            Some(conn) if !self.breaker.is_open() => Ok(&conn.pool),
            _ => Err(RedisDown),
        }
    }

    fn failed(&self, operation: &str, error: &fred::error::Error) -> RedisDown {
        tracing::debug!(operation, %error, "redis operation failed");
        self.metrics
            .redis_errors
            .with_label_values(&[operation])
            .inc();
        self.breaker.trip();
        RedisDown
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, RedisDown> {
        let pool = self.pool()?;
        let span = tracing::info_span!(
            "redis",
            otel.name = "redis GET",
            otel.kind = "client",
            db.system = "redis"
        );
        let value: Value = pool
            .get(key)
            .instrument(span)
            .await
            .map_err(|e| self.failed("get", &e))?;
        self.breaker.reset();
        Ok(value.as_string())
    }

    pub async fn set(&self, key: &str, value: String, ttl: Duration) {
        let Ok(pool) = self.pool() else { return };
        let secs = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let span = tracing::info_span!(
            "redis",
            otel.name = "redis SET",
            otel.kind = "client",
            db.system = "redis"
        );
        if let Err(e) = pool
            .set::<Value, _, _>(key, value, Some(Expiration::EX(secs)), None, false)
            .instrument(span)
            .await
        {
            self.failed("set", &e);
        }
    }

    /// Takes `mutex:<key>` if free; returns the owner token.
    pub async fn try_lock(&self, lock: &str) -> Result<Option<String>, RedisDown> {
        let pool = self.pool()?;
        let token = format!("{:032x}", rand::random::<u128>());
        let reply: Value = pool
            .set(
                lock,
                token.as_str(),
                Some(Expiration::PX(LOCK_TTL_MS)),
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(|e| self.failed("lock", &e))?;
        Ok((!reply.is_null()).then_some(token))
    }

    pub async fn unlock(&self, lock: &str, token: &str) {
        let Ok(pool) = self.pool() else { return };
        if let Err(e) = pool
            .eval::<Value, _, _, _>(UNLOCK_SCRIPT, vec![lock], vec![token])
            .await
        {
            self.failed("unlock", &e);
        }
    }

    /// Deletes `keys` from Redis and tells every replica to drop them. What cannot be
    /// delivered now is kept and delivered when Redis is back.
    pub async fn invalidate(&self, keys: &[String]) {
        if self.deliver(keys).await.is_err() {
            self.remember(keys);
        }
    }

    fn remember(&self, keys: &[String]) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.extend(keys.iter().cloned());
    }

    async fn deliver(&self, keys: &[String]) -> Result<(), RedisDown> {
        let pool = self.pool()?;
        // One DEL per key: in a cluster the keys live in different slots.
        let deletes = keys.iter().map(|key| pool.del::<Value, _>(key.as_str()));
        for result in futures_util::future::join_all(deletes).await {
            result.map_err(|e| self.failed("del", &e))?;
        }
        let message = serde_json::to_string(keys).unwrap_or_else(|_| "[]".into());
        pool.next()
            .publish::<Value, _, _>(INVALIDATION_CHANNEL, message)
            .await
            .map_err(|e| self.failed("publish", &e))?;
        Ok(())
    }

    /// Delivers the invalidations kept while Redis was unreachable.
    async fn flush_pending(&self) {
        let keys: Vec<String> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *pending).into_iter().collect()
        };
        if keys.is_empty() {
            return;
        }
        match self.deliver(&keys).await {
            Ok(()) => tracing::info!(
                keys = keys.len(),
                "delivered invalidations kept while Redis was unreachable"
            ),
            Err(RedisDown) => self.remember(&keys),
        }
    }

    fn has_pending(&self) -> bool {
        !self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    pub async fn close(&self) {
        self.stop.cancel();
        if let Some(conn) = self.conn.get() {
            let _ = conn.subscriber.quit().await;
            let _ = conn.pool.quit().await;
        }
    }

    /// Connects (retrying until Redis is reachable), then follows the invalidation channel.
    async fn connect_and_listen(self: Arc<Self>) {
        let mut delay = Duration::from_millis(200);
        let mut warned = false;
        let conn = loop {
            let attempt = tokio::select! {
                attempt = self.connect() => attempt,
                () = self.stop.cancelled() => return,
            };
            match attempt {
                Ok(conn) => break conn,
                Err(error) => {
                    if !warned {
                        tracing::warn!(%error, addrs = ?self.settings.addrs, "Redis unreachable; serving from the database and retrying");
                        warned = true;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.stop.cancelled() => return,
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        };
        tracing::info!(clustered = conn.pool.is_clustered(), "connected to Redis");
        let subscriber = conn.subscriber.clone();
        if self.conn.set(conn).is_err() {
            return;
        }
        self.listen(subscriber).await;
    }

    async fn connect(&self) -> Result<Connection, fred::error::Error> {
        let servers = parse_addrs(&self.settings.addrs)?;
        let clustered = servers.len() > 1 || self.probe_cluster(&servers[0]).await?;
        let server = if clustered {
            ServerConfig::new_clustered(servers)
        } else {
            ServerConfig::new_centralized(servers[0].0.clone(), servers[0].1)
        };
        let builder = self.builder(server, clustered);
        let pool = builder.build_pool(self.settings.pool_size.max(1))?;
        timeout(pool.init()).await?;
        let subscriber = builder.build_subscriber_client()?;
        if let Err(e) = timeout(subscriber.init()).await {
            let _ = pool.quit().await;
            return Err(e);
        }
        Ok(Connection { pool, subscriber })
    }

    fn builder(&self, server: ServerConfig, clustered: bool) -> Builder {
        let config = Config {
            server,
            password: self
                .settings
                .password
                .as_ref()
                .map(|p| p.expose().to_owned()),
            database: (!clustered && self.settings.db != 0)
                .then(|| u8::try_from(self.settings.db).unwrap_or(u8::MAX)),
            // Fail at once while disconnected instead of queueing behind the reconnection.
            fail_fast: true,
            ..Config::default()
        };
        let mut builder = Builder::from_config(config);
        builder
            .with_performance_config(|p| p.default_command_timeout = COMMAND_TIMEOUT)
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(2);
                c.internal_command_timeout = Duration::from_secs(2);
                c.max_command_attempts = self.settings.max_retries.saturating_add(1);
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2));
        builder
    }

    /// Whether the single configured node is part of a cluster (one seed node is enough).
    async fn probe_cluster(&self, server: &(String, u16)) -> Result<bool, fred::error::Error> {
        let client = self
            .builder(
                ServerConfig::new_centralized(server.0.clone(), server.1),
                true,
            )
            .build()?;
        timeout(client.init()).await?;
        let info: Result<String, _> = client.info(Some(InfoKind::Cluster)).await;
        let _ = client.quit().await;
        Ok(info?.contains("cluster_enabled:1"))
    }

    async fn listen(&self, subscriber: SubscriberClient) {
        let mut messages = subscriber.message_rx();
        let mut reconnects = subscriber.reconnect_rx();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        self.resubscribe(&subscriber).await;
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return,
                message = messages.recv() => match message {
                    Ok(message) => self.on_message(&message.value).await,
                    // Messages were dropped: nothing local can be trusted.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => self.local.invalidate_all(),
                    Err(_) => return,
                },
                reconnect = reconnects.recv() => {
                    if reconnect.is_err() && !matches!(reconnect, Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) {
                        return;
                    }
                    self.resubscribe(&subscriber).await;
                }
                _ = tick.tick() => {
                    if subscriber.state() != ClientState::Connected && self.coherent.swap(false, Ordering::AcqRel) {
                        tracing::warn!("invalidation channel lost; reading from the database until it is back");
                    }
                    if self.has_pending() && !self.breaker.is_open() {
                        self.flush_pending().await;
                    }
                }
            }
        }
    }

    async fn resubscribe(&self, subscriber: &SubscriberClient) {
        self.coherent.store(false, Ordering::Release);
        loop {
            match subscriber.subscribe(INVALIDATION_CHANNEL).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::debug!(%error, "subscribing to the invalidation channel");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(200)) => {}
                        () = self.stop.cancelled() => return,
                    }
                }
            }
        }
        // Anything cached while unsubscribed may have missed its invalidation.
        self.local.invalidate_all();
        self.breaker.reset();
        self.flush_pending().await;
        self.coherent.store(true, Ordering::Release);
        tracing::info!("subscribed to {INVALIDATION_CHANNEL}");
    }

    async fn on_message(&self, value: &Value) {
        let Some(text) = value.as_string() else {
            return;
        };
        let Ok(keys) = serde_json::from_str::<Vec<String>>(&text) else {
            tracing::warn!(message = %text, "ignoring a malformed invalidation message");
            return;
        };
        self.local.invalidate_rendered(&keys).await;
        self.metrics
            .invalidations_received
            .inc_by(keys.len() as u64);
    }
}

async fn timeout<T>(
    future: impl std::future::Future<Output = Result<T, fred::error::Error>>,
) -> Result<T, fred::error::Error> {
    tokio::time::timeout(Duration::from_secs(3), future)
        .await
        .unwrap_or_else(|_| {
            Err(fred::error::Error::new(
                fred::error::ErrorKind::Timeout,
                "connecting to Redis timed out",
            ))
        })
}

fn parse_addrs(addrs: &[String]) -> Result<Vec<(String, u16)>, fred::error::Error> {
    let invalid = |a: &str| {
        fred::error::Error::new(
            fred::error::ErrorKind::Config,
            format!("invalid Redis address {a:?}"),
        )
    };
    let servers: Vec<(String, u16)> = addrs
        .iter()
        .map(|a| {
            let (host, port) = a.rsplit_once(':').ok_or_else(|| invalid(a))?;
            Ok((
                host.trim_matches(['[', ']']).to_owned(),
                port.parse().map_err(|_| invalid(a))?,
            ))
        })
        .collect::<Result<_, fred::error::Error>>()?;
    if servers.is_empty() {
        return Err(invalid(""));
    }
    Ok(servers)
}
