//! The connection and subscription lifecycle: connect (retrying until Redis is reachable),
//! tell a single node from a cluster, subscribe every handler's channel, and resubscribe
//! after every reconnection.

use std::{sync::atomic::Ordering, time::Duration};

use fred::{
    clients::SubscriberClient,
    prelude::{
        Builder, ClientLike, ClientState, Config, EventInterface, PubsubInterface, ReconnectPolicy,
        ServerConfig,
    },
    types::InfoKind,
};
use tokio::sync::broadcast::error::RecvError;

use super::{COMMAND_TIMEOUT, Connection, RedisClient};

/// How often a lost subscription is looked for.
const WATCH_EVERY: Duration = Duration::from_millis(200);

impl RedisClient {
    /// Connects (retrying until Redis is reachable), then follows the channels.
    pub(super) async fn connect_and_listen(self: std::sync::Arc<Self>) {
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
                        tracing::warn!(%error, addrs = ?self.settings.addrs, "Redis unreachable; working without it and retrying");
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
        // `parse_addrs` refuses an empty list.
        let first = servers.first().cloned().unwrap_or_default();
        let clustered = servers.len() > 1 || self.probe_cluster(&first).await?;
        let server = if clustered {
            ServerConfig::new_clustered(servers)
        } else {
            ServerConfig::new_centralized(first.0, first.1)
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
        let mut tick = tokio::time::interval(WATCH_EVERY);
        self.resubscribe(&subscriber).await;
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return,
                message = messages.recv() => match message {
                    Ok(message) => {
                        if let Some(text) = message.value.as_string() {
                            self.dispatch(&message.channel, &text).await;
                        }
                    }
                    // Messages were dropped: treat it as a lost subscription.
                    Err(RecvError::Lagged(_)) => self.resubscribe(&subscriber).await,
                    Err(RecvError::Closed) => return,
                },
                reconnect = reconnects.recv() => {
                    if matches!(reconnect, Err(RecvError::Closed)) {
                        return;
                    }
                    self.resubscribe(&subscriber).await;
                }
                _ = tick.tick() => {
                    if subscriber.state() != ClientState::Connected && self.subscribed.swap(false, Ordering::AcqRel) {
                        tracing::warn!("Redis channels lost; working without them until they are back");
                    }
                }
            }
        }
    }

    async fn dispatch(&self, channel: &str, payload: &str) {
        for handler in self.handlers() {
            if handler.channel() == channel {
                handler.on_message(payload).await;
            }
        }
    }

    async fn resubscribe(&self, subscriber: &SubscriberClient) {
        self.subscribed.store(false, Ordering::Release);
        let handlers = self.handlers();
        let channels: Vec<&'static str> = handlers.iter().map(|h| h.channel()).collect();
        if !channels.is_empty() {
            loop {
                match subscriber.subscribe(channels.clone()).await {
                    Ok(()) => break,
                    Err(error) => {
                        tracing::debug!(%error, "subscribing to the Redis channels");
                        tokio::select! {
                            () = tokio::time::sleep(WATCH_EVERY) => {}
                            () = self.stop.cancelled() => return,
                        }
                    }
                }
            }
        }
        self.breaker.reset();
        for handler in &handlers {
            handler.on_subscribed().await;
        }
        self.subscribed.store(true, Ordering::Release);
        tracing::info!(?channels, "subscribed to the Redis channels");
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
