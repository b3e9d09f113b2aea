//! Builds the whole service from its settings: store, services, listeners. One place wires
//! everything; tests call the same `Application::build` on port 0.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    account::AccountService,
    auth::{self, AuthService, PasswordHasher, TokenCodec, TokenLifetimes},
    cache::{CacheSettings, CachedStore},
    clock::{Clock, SystemClock},
    config::Settings,
    grpc,
    http::{self, AppState, Services},
    idgen::{self, IdGenerator},
    metrics::Metrics,
    readiness::Health,
    redis::{RedisClient, RedisSettings},
    store::{self, CustomerStore, DatabaseUrl, PoolSettings, SqliteTarget},
};

/// A listener and the address it really got (port 0 becomes a free port).
struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
}

async fn bind(addr: SocketAddr, setting: &str) -> anyhow::Result<Bound> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {setting} ({addr})"))?;
    let addr = listener
        .local_addr()
        .with_context(|| format!("reading the address of {setting}"))?;
    Ok(Bound { listener, addr })
}

pub struct Application {
    http: Bound,
    grpc: Bound,
    prom: Bound,
    state: AppState,
    cache: Arc<CachedStore>,
    metrics: Metrics,
    shutdown_timeout: Duration,
    shutdown_delay: Duration,
    body_limit: usize,
}

impl Application {
    /// Opens the database (running migrations), starts the hashing pool and binds the
    /// three listeners. Nothing is served until `run_until`.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// As `build`, with the wall clock given (tests fix or advance it).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let metrics = Metrics::new(&settings.app);
        let (url, cache) = open_store(&settings, metrics.clone(), clock.clone()).await?;

        let embedded = matches!(url, DatabaseUrl::Sqlite(SqliteTarget::File(_)));
        let secret = auth::jwt_secret(settings.jwt_secret.as_ref(), &settings.data_dir, embedded)?;
        let ids = Arc::new(IdGenerator::new(
            idgen::machine_id(settings.machine_id),
            clock.clone(),
        ));
        let threads = match settings.hash_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let hasher = PasswordHasher::new(threads, settings.hash_queue, metrics.clone())
            .context("starting hashing threads")?;
        let auth = AuthService::new(
            cache.clone(),
            TokenCodec::new(secret.expose().as_bytes()),
            hasher,
            ids,
            clock,
            TokenLifetimes {
                access_secs: settings.access_token_expire_secs,
                refresh_secs: settings.refresh_token_expire_secs,
            },
            metrics.clone(),
        );
        let state = AppState::new(Services {
            auth,
            account: AccountService::new(cache.clone()),
            health: Health::new(cache.clone(), metrics.clone()),
            metrics: metrics.clone(),
        });

        let at = |port| SocketAddr::new(settings.bind_address, port);
        Ok(Self {
            http: bind(at(settings.http_port), "HTTP_PORT").await?,
            grpc: bind(at(settings.grpc_port), "GRPC_PORT").await?,
            prom: bind(at(settings.prom_port), "PROM_PORT").await?,
            state,
            cache,
            metrics,
            shutdown_timeout: settings.shutdown_timeout,
            shutdown_delay: settings.shutdown_delay,
            body_limit: settings.http_body_limit,
        })
    }

    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// The store the services use: the database behind the two-tier cache.
    pub fn cache(&self) -> Arc<CachedStore> {
        self.cache.clone()
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http.addr
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc.addr
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.prom.addr
    }

    /// Serves until `shutdown` completes, then turns unready, waits `SHUTDOWN_DELAY_SECONDS`,
    /// stops accepting, lets requests in flight finish (up to the shutdown timeout) and
    /// closes the pools.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // `requested`: SIGTERM arrived, readiness says no; `stop`: the listeners close.
        let requested = CancellationToken::new();
        let stop = CancellationToken::new();
        tokio::spawn({
            let requested = requested.clone();
            async move {
                shutdown.await;
                requested.cancel();
            }
        });

        let http_server = {
            let app = http::router(self.state.clone(), self.body_limit);
            let listener = axum::serve::ListenerExt::tap_io(self.http.listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(stop.clone().cancelled_owned())
        };
        let grpc_server = grpc::server(self.state.auth.clone(), self.metrics.clone()).await?;
        grpc_server.follow_readiness(self.state.health.follow(requested.clone()));
        let grpc_health = grpc_server.health();
        let grpc_server = grpc_server.serve(self.grpc.listener, stop.clone().cancelled_owned());
        let metrics_server = axum::serve(self.prom.listener, http::metrics_router(self.metrics))
            .with_graceful_shutdown(stop.clone().cancelled_owned());

        let mut servers = tokio::spawn(async move {
            let (h, g, m) = tokio::join!(
                http_server.into_future(),
                grpc_server,
                metrics_server.into_future()
            );
            h.context("HTTP server")?;
            g.context("gRPC server")?;
            m.context("metrics server")?;
            anyhow::Ok(())
        });

        let result = tokio::select! {
            // A server failed on its own.
            joined = &mut servers => Some(joined),
            () = requested.cancelled() => None,
        };
        let result = match result {
            Some(joined) => joined.context("server task")?,
            None => {
                self.state.health.start_shutdown();
                grpc::set_not_serving(&grpc_health).await;
                if !self.shutdown_delay.is_zero() {
                    tracing::info!(delay = ?self.shutdown_delay, "shutting down: unready, still serving while load balancers drain");
                    tokio::time::sleep(self.shutdown_delay).await;
                }
                tracing::info!(timeout = ?self.shutdown_timeout, "shutting down: finishing requests in flight");
                stop.cancel();
                match tokio::time::timeout(self.shutdown_timeout, &mut servers).await {
                    Ok(joined) => joined.context("server task")?,
                    Err(_) => {
                        tracing::warn!(
                            "requests still in flight after the shutdown timeout; closing them"
                        );
                        servers.abort();
                        Ok(())
                    }
                }
            }
        };
        self.cache.close().await;
        tracing::info!("stopped");
        result
    }
}

/// The database behind the two-tier cache, as configured. Redis, when configured, connects
/// in the background.
pub async fn open_store(
    settings: &Settings,
    metrics: Metrics,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<(DatabaseUrl, Arc<CachedStore>)> {
    let url = DatabaseUrl::parse(settings.db_dsn.expose(), &settings.data_dir)?;
    let pool = PoolSettings {
        max_open: settings.db_max_open_conns,
        max_idle: settings.db_max_idle_conns,
        acquire_timeout: settings.db_acquire_timeout,
    };
    let database = store::open(&url, &pool, metrics.clone(), clock)
        .await
        .context("opening the database")?;
    tracing::info!(backend = url.backend(), "database ready");
    let redis = (!settings.redis_addrs.is_empty()).then(|| {
        RedisClient::new(
            RedisSettings {
                addrs: settings.redis_addrs.clone(),
                password: settings.redis_password.clone(),
                db: settings.redis_db,
                pool_size: usize::try_from(settings.redis_pool_size).unwrap_or(1),
                max_retries: settings.redis_max_retries,
            },
            metrics.clone(),
        )
    });
    let cache = Arc::new(CachedStore::new(
        database,
        CacheSettings {
            local_ttl: settings.local_cache_expiration,
            local_max_bytes: settings.local_cache_max_bytes,
            redis_ttl: settings.redis_expiration,
            negative_ttl: settings.negative_cache_expiration,
        },
        redis.clone(),
        metrics,
    ));
    if let Some(redis) = redis {
        redis.start();
    }
    Ok((url, cache))
}
