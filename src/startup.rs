//! Builds the whole service from its settings: store, services, listeners. One place wires
//! everything; tests call the same `Application::build` on port 0.

use std::{future::Future, net::SocketAddr, path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    account::AccountService,
    auth::{AuthService, PasswordHasher, TokenCodec, TokenLifetimes},
    cache::{CacheSettings, CachedStore, RedisSettings},
    clock::{Clock, SystemClock},
    config::{Secret, Settings},
    grpc::{self, AuthServiceServer},
    http::{self, AppState, Health, Services},
    idgen::{self, IdGenerator},
    metrics::Metrics,
    store::{self, CustomerStore, DatabaseUrl, PoolSettings},
};

/// The generated secret's file inside `DATA_DIR` when `JWT_SECRET` is not set.
const JWT_SECRET_FILE: &str = "jwt_secret";

pub struct Application {
    http: TcpListener,
    grpc: TcpListener,
    prom: TcpListener,
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
        let metrics = Metrics::new(&settings.app);
        let (url, cache) = open_store(&settings, metrics.clone()).await?;
        let store: Arc<dyn CustomerStore> = cache.clone();

        let secret = jwt_secret(&settings, &url)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ids = Arc::new(IdGenerator::new(machine_id(&settings), clock.clone()));
        let threads = match settings.hash_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let hasher = PasswordHasher::new(threads, settings.hash_queue, metrics.clone())
            .context("starting hashing threads")?;
        let auth = AuthService::new(
            store.clone(),
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
            account: AccountService::new(store.clone()),
            health: Health::new(cache.clone()),
            metrics: metrics.clone(),
        });

        let bind = |port| SocketAddr::new(settings.bind_address, port);
        let http = TcpListener::bind(bind(settings.http_port))
            .await
            .context("binding HTTP_PORT")?;
        let grpc = TcpListener::bind(bind(settings.grpc_port))
            .await
            .context("binding GRPC_PORT")?;
        let prom = TcpListener::bind(bind(settings.prom_port))
            .await
            .context("binding PROM_PORT")?;
        Ok(Self {
            http,
            grpc,
            prom,
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

    /// The cache in front of the database (tests look at its state).
    pub fn cache(&self) -> Arc<CachedStore> {
        self.cache.clone()
    }

    /// The store the services use: the database behind the cache.
    pub fn store(&self) -> Arc<dyn CustomerStore> {
        self.cache.clone()
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http
            .local_addr()
            .unwrap_or_else(|_| unreachable!("a bound listener has an address"))
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
            .local_addr()
            .unwrap_or_else(|_| unreachable!("a bound listener has an address"))
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.prom
            .local_addr()
            .unwrap_or_else(|_| unreachable!("a bound listener has an address"))
    }

    /// Serves until `shutdown` completes, then stops accepting, lets requests in flight
    /// finish (up to the shutdown timeout) and closes the database pool.
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
            let listener = axum::serve::ListenerExt::tap_io(self.http, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(stop.clone().cancelled_owned())
        };

        let (reporter, health_service) = tonic_health::server::health_reporter();
        reporter
            .set_serving::<AuthServiceServer<grpc::AuthGrpc>>()
            .await;
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(grpc::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(grpc::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;
        let grpc_incoming = tokio_stream::wrappers::TcpListenerStream::new(self.grpc);
        let auth = grpc::AuthGrpc::new(self.state.auth.clone(), self.metrics.clone());
        let grpc_server = tonic::transport::Server::builder()
            .layer(grpc::ObserveLayer::new(self.metrics.clone()))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(AuthServiceServer::new(auth))
            .serve_with_incoming_shutdown(
                tokio_stream::StreamExt::map(grpc_incoming, |conn| {
                    conn.inspect(|tcp| {
                        let _ = tcp.set_nodelay(true);
                    })
                }),
                stop.clone().cancelled_owned(),
            );

        let metrics_server = axum::serve(self.prom, crate::metrics::router(self.metrics.clone()))
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
        tokio::spawn(follow_readiness(
            self.state.health.clone(),
            reporter.clone(),
            requested.clone(),
        ));

        let result = tokio::select! {
            // A server failed on its own.
            joined = &mut servers => Some(joined),
            () = requested.cancelled() => None,
        };
        let result = match result {
            Some(joined) => joined.context("server task")?,
            None => {
                self.state.health.start_shutdown();
                reporter
                    .set_service_status("", tonic_health::ServingStatus::NotServing)
                    .await;
                reporter
                    .set_not_serving::<AuthServiceServer<grpc::AuthGrpc>>()
                    .await;
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
) -> anyhow::Result<(DatabaseUrl, Arc<CachedStore>)> {
    let url = DatabaseUrl::parse(settings.db_dsn.expose(), &settings.data_dir)?;
    let pool = PoolSettings {
        max_open: settings.db_max_open_conns,
        max_idle: settings.db_max_idle_conns,
        acquire_timeout: settings.db_acquire_timeout,
    };
    let database = store::open(&url, &pool, metrics.clone())
        .await
        .context("opening the database")?;
    tracing::info!(backend = url.backend(), "database ready");
    let redis = (!settings.redis_addrs.is_empty()).then(|| RedisSettings {
        addrs: settings.redis_addrs.clone(),
        password: settings.redis_password.clone(),
        db: settings.redis_db,
        pool_size: usize::try_from(settings.redis_pool_size).unwrap_or(1),
        max_retries: settings.redis_max_retries,
    });
    let cache = Arc::new(CachedStore::new(
        database,
        CacheSettings {
            local_ttl: settings.local_cache_expiration,
            local_max_bytes: settings.local_cache_max_bytes,
            redis_ttl: settings.redis_expiration,
            negative_ttl: settings.negative_cache_expiration,
        },
        redis,
        metrics,
    ));
    Ok((url, cache))
}

/// Keeps the gRPC health of the whole server ("") in step with `/readyz`. `Auth` itself
/// needs no database, so `auth.AuthService` stays SERVING until shutdown.
async fn follow_readiness(
    health: Health,
    reporter: tonic_health::server::HealthReporter,
    requested: CancellationToken,
) {
    let mut last = None;
    loop {
        let ready = health.readiness().await.status == "ready";
        if last != Some(ready) {
            let status = if ready {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            reporter.set_service_status("", status).await;
            last = Some(ready);
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = requested.cancelled() => return,
        }
    }
}

fn machine_id(settings: &Settings) -> u16 {
    let (id, source) = match settings.machine_id {
        Some(id) => (id, "MACHINE_ID"),
        None => match idgen::machine_id_from_private_ip() {
            Some(id) => (id, "private IPv4 address"),
            None => (
                rand::random(),
                "random (no private IPv4 address; set MACHINE_ID)",
            ),
        },
    };
    tracing::info!(machine_id = id, source, "Sonyflake machine id");
    id
}

/// `JWT_SECRET`, or else a random secret: kept in `DATA_DIR` for the embedded SQLite setup
/// so that restarts keep tokens valid, per process otherwise (with a warning, since
/// replicas would not accept each other's tokens).
fn jwt_secret(settings: &Settings, url: &DatabaseUrl) -> anyhow::Result<Secret> {
    if let Some(secret) = &settings.jwt_secret {
        return Ok(secret.clone());
    }
    let generated = || -> String {
        let bytes: [u8; 32] = rand::random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    if let DatabaseUrl::Sqlite(store::SqliteTarget::File(_)) = url {
        let path = settings.data_dir.join(JWT_SECRET_FILE);
        let secret = read_or_create_secret(&path, generated).with_context(|| {
            format!(
                "JWT_SECRET is not set and {} cannot be used",
                path.display()
            )
        })?;
        tracing::info!(file = %path.display(), "JWT_SECRET not set: using the generated secret kept in the data directory");
        return Ok(secret);
    }
    tracing::warn!(
        "JWT_SECRET not set: using a random secret for this process only; other replicas will reject its tokens"
    );
    Ok(Secret::new(generated()))
}

fn read_or_create_secret(
    path: &Path,
    generate: impl FnOnce() -> String,
) -> std::io::Result<Secret> {
    match std::fs::read_to_string(path) {
        Ok(existing) if !existing.trim().is_empty() => return Ok(Secret::new(existing.trim())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let secret = generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, secret.as_bytes())?;
    Ok(Secret::new(secret))
}
