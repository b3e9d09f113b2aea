//! Builds the whole service from its settings: store, services, listeners. One place wires
//! everything; tests call the same `Application::build` on port 0.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    config::{JwtAlg, Secret, Settings},
    domain::clock::{Clock, SystemClock},
    metrics::Metrics,
    service::account::AccountService,
    service::auth::{
        self, AbusePolicy, AuthDeps, AuthService, HashPolicy, PasswordHasher, TokenCodec,
    },
    service::idgen::{self, IdGenerator},
    service::keys::{Alg, KeyManager, KeyPair, KeySettings, KeySource},
    service::mail::{MailSettings, Mailer, Sender, Transport},
    service::operator::{AdminService, ApiKeys},
    service::readiness::Health,
    service::recovery::{MailLimits, RecoveryDeps, RecoveryService},
    service::session::{SessionService, SessionSettings},
    service::throttle::{LockoutPolicy, Throttle},
    storage::cache::{CacheSettings, CachedStore},
    storage::redis::{RedisClient, RedisSettings},
    storage::store::{self, CustomerStore, DatabaseUrl, PoolSettings, SqliteTarget},
    transport::grpc,
    transport::http::{self, AppState, HttpSettings, Services},
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

/// Whether the services are built to serve, or for one command of the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Command,
}

/// Everything the service is made of, before any listener: the stores behind their cache,
/// Redis, and the services. `serve` and the CLI commands build the same one, so that an
/// operator's command goes through the same code as the API.
pub struct Core {
    pub metrics: Metrics,
    pub cache: Arc<CachedStore>,
    pub redis: Option<Arc<RedisClient>>,
    pub auth: AuthService,
    pub account: AccountService,
    pub keys: KeyManager,
    pub clock: Arc<dyn Clock>,
    /// Password reset and email verification (SPEC section 13).
    pub recovery: RecoveryService,
    /// What the operator API and the `customer` commands call (SPEC section 14).
    pub admin: AdminService,
    /// Stops the background tasks (revocation poll, sweep, key reload, mail sender).
    background: CancellationToken,
    /// The mail sender, waited for on close (a mail being handed over is finished).
    mail_sender: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Core {
    pub async fn open(
        settings: &Settings,
        clock: Arc<dyn Clock>,
        role: Role,
    ) -> anyhow::Result<Self> {
        let metrics = Metrics::new(&settings.app);
        let url = DatabaseUrl::parse(settings.db_dsn.expose(), &settings.data_dir)?;
        let pool = PoolSettings {
            max_open: settings.db_max_open_conns,
            max_idle: settings.db_max_idle_conns,
            acquire_timeout: settings.db_acquire_timeout,
        };
        let stores = store::open(&url, &pool, metrics.clone(), clock.clone())
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
        let cache = Arc::new(
            CachedStore::new(
                stores.customers.clone(),
                CacheSettings {
                    local_ttl: settings.local_cache_expiration,
                    local_max_bytes: settings.local_cache_max_bytes,
                    redis_ttl: settings.redis_expiration,
                    negative_ttl: settings.negative_cache_expiration,
                },
                redis.clone(),
                metrics.clone(),
            )
            .with_database_feed(stores.feed.clone(), clock.clone()),
        );
        let sessions = SessionService::new(
            stores.sessions.clone(),
            redis.clone(),
            SessionSettings {
                access_ttl_secs: settings.access_token_expire_secs,
                refresh_ttl_secs: settings.refresh_token_expire_secs,
                session_max: settings.session_max,
                rotation: settings.refresh_rotation,
                reuse_grace: settings.refresh_reuse_grace,
                legacy_refresh_tokens: settings.legacy_refresh_tokens,
                max_per_customer: settings.max_sessions_per_customer,
                revocation_poll: settings.revocation_poll,
            },
            clock.clone(),
            metrics.clone(),
        );
        // Every user of the client has registered its channels.
        if let Some(redis) = &redis {
            redis.start();
        }
        let background = CancellationToken::new();
        if role == Role::Server {
            sessions
                .start_background(background.clone())
                .await
                .context("loading the revoked sessions")?;
            cache.follow_database_feed(settings.revocation_poll, background.clone());
        }

        let keys = KeyManager::start(
            key_settings(settings, &url, role)?,
            stores.keys.clone(),
            clock.clone(),
            metrics.clone(),
        )
        .await
        .context("loading the signing keys")?;
        if role == Role::Server {
            let ring = keys.ring().load();
            tracing::info!(
                alg = ring.signer_alg().name(),
                kid = ring.signer_kid(),
                published = ring.published().len(),
                "signing key"
            );
            keys.spawn(background.clone());
        }
        let ids = Arc::new(IdGenerator::new(
            idgen::machine_id(settings.machine_id),
            clock.clone(),
        ));
        let threads = match settings.hash_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let policy = HashPolicy::new(settings.password_hash, settings.argon2)
            .map_err(|e| anyhow::anyhow!("invalid Argon2id parameters: {e}"))?;
        if role == Role::Server {
            tracing::info!(
                algorithm = policy.algorithm().label(),
                threads,
                queue = settings.hash_queue,
                memory_bound_mib = (policy.memory_per_thread() * threads as u64) / (1024 * 1024),
                "password hashing pool"
            );
        }
        let hasher = PasswordHasher::new(threads, settings.hash_queue, policy, metrics.clone())
            .context("starting hashing threads")?;
        let lockout = |max_failures| LockoutPolicy {
            max_failures,
            window: settings.login_failure_window,
            first_lockout: settings.login_lockout,
            max_lockout: settings.login_max_lockout,
        };
        let auth = AuthService::new(AuthDeps {
            customers: cache.clone(),
            sessions,
            tokens: TokenCodec::with_ring(keys.ring(), Some(metrics.clone())),
            hasher,
            throttle: Throttle::new(redis.clone(), clock.clone(), metrics.clone()),
            abuse: AbusePolicy {
                login: lockout(settings.login_max_failures),
                login_per_ip: lockout(settings.login_max_failures_per_ip),
                signups_per_ip_per_hour: settings.signup_max_per_ip_per_hour,
                uniform_errors: settings.login_uniform_errors,
                min_password_score: settings.password_min_score,
                refusal_delay: settings.throttle_refusal_delay,
            },
            ids,
            clock: clock.clone(),
            metrics: metrics.clone(),
        });
        let (recovery, admin, mail_sender) = open_mail(
            settings,
            &stores,
            &auth,
            &cache,
            Throttle::new(redis.clone(), clock.clone(), metrics.clone()),
            &clock,
            &metrics,
            (role == Role::Server).then(|| background.clone()),
        )?;
        Ok(Self {
            account: AccountService::new(cache.clone(), stores.recovery.clone()),
            metrics,
            cache,
            redis,
            auth,
            keys,
            clock,
            recovery,
            admin,
            background,
            mail_sender: std::sync::Mutex::new(mail_sender),
        })
    }

    /// Stops the background tasks and closes Redis and the database pool.
    pub async fn close(&self) {
        self.background.cancel();
        let sender = self.mail_sender.lock().ok().and_then(|mut s| s.take());
        if let Some(sender) = sender {
            // A mail being handed over is finished; one stuck longer is retried elsewhere
            // when its lease runs out.
            let _ = tokio::time::timeout(Duration::from_secs(5), sender).await;
        }
        self.cache.close().await;
    }
}

/// The outbox, the reset and verification flows, the operator service, and (serving)
/// the mail sender task (SPEC sections 13 and 14).
#[allow(clippy::too_many_arguments, reason = "the handles Core::open built")]
fn open_mail(
    settings: &Settings,
    stores: &store::Stores,
    auth: &AuthService,
    cache: &Arc<CachedStore>,
    throttle: Throttle,
    clock: &Arc<dyn Clock>,
    metrics: &Metrics,
    serve: Option<CancellationToken>,
) -> anyhow::Result<(
    RecoveryService,
    AdminService,
    Option<tokio::task::JoinHandle<()>>,
)> {
    let mailer = Mailer::new(stores.outbox.clone(), clock.clone(), metrics.clone());
    let recovery = RecoveryService::new(RecoveryDeps {
        auth: auth.clone(),
        customers: cache.clone(),
        store: stores.recovery.clone(),
        mailer: mailer.clone(),
        throttle,
        limits: MailLimits {
            per_email_per_hour: settings.mail_max_per_email_per_hour,
            per_ip_per_hour: settings.mail_max_per_ip_per_hour,
        },
        clock: clock.clone(),
        metrics: metrics.clone(),
    });
    let keys = ApiKeys::new(&settings.admin_api_keys);
    let admin = AdminService::new(
        auth.clone(),
        recovery.clone(),
        metrics.clone(),
        keys.names(),
    );
    let Some(stop) = serve else {
        return Ok((recovery, admin, None));
    };
    let transport = Transport::new(
        settings.smtp_url.as_ref(),
        &settings.data_dir,
        settings.mail_send_timeout,
    )
    .context("invalid value for SMTP_URL")?;
    if transport.is_smtp() {
        if let Some(url) = &settings.smtp_url {
            tracing::info!(host = %url.host, port = url.port, tls = ?url.tls, "mail goes out through SMTP");
        }
    } else {
        tracing::warn!(
            dir = %settings.data_dir.join("mail").display(),
            "SMTP_URL is not set: mails are written as .eml files (development only)"
        );
    }
    let sender = Sender::new(
        &mailer,
        stores.recovery.clone(),
        transport,
        Arc::new(MailSettings {
            from: settings.mail_from.clone(),
            public_base_url: settings.public_base_url.clone(),
            reset_ttl: settings.reset_token_ttl,
            verify_ttl: settings.verify_token_ttl,
            max_attempts: settings.mail_max_attempts,
            retry_base: settings.mail_retry,
            poll: settings.mail_poll,
            send_timeout: settings.mail_send_timeout,
            concurrency: settings.mail_concurrency,
        }),
    );
    Ok((recovery, admin, Some(sender.spawn(stop))))
}

/// Where the signing keys come from, as configured.
fn key_settings(settings: &Settings, url: &DatabaseUrl, role: Role) -> anyhow::Result<KeySettings> {
    let alg = match settings.jwt_alg {
        JwtAlg::Hs256 => Alg::Hs256,
        JwtAlg::EdDsa => Alg::EdDsa,
        JwtAlg::Es256 => Alg::Es256,
    };
    let secret = match (alg, role, &settings.jwt_secret) {
        // HS256 signs: a secret is needed, generated when not configured.
        (Alg::Hs256, Role::Server, configured) => {
            let embedded = matches!(url, DatabaseUrl::Sqlite(SqliteTarget::File(_)));
            Some(auth::jwt_secret(
                configured.as_ref(),
                &settings.data_dir,
                embedded,
            )?)
        }
        (Alg::Hs256, Role::Command, None) => {
            Some(Secret::new(format!("{:x}", rand::random::<u128>())))
        }
        (_, _, configured) => configured.clone(),
    };
    let source = match &settings.jwt_private_key_file {
        None => KeySource::Database,
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("reading JWT_PRIVATE_KEY_FILE {}", path.display()))?;
            let pair = KeyPair::from_pkcs8(&bytes).with_context(|| {
                format!("invalid value for JWT_PRIVATE_KEY_FILE: {}", path.display())
            })?;
            anyhow::ensure!(
                pair.alg() == alg,
                "invalid value for JWT_PRIVATE_KEY_FILE: an {} key, but JWT_ALG is {}",
                pair.alg().name(),
                alg.name()
            );
            KeySource::File(Box::new(pair))
        }
    };
    Ok(KeySettings {
        alg,
        secret,
        previous_secrets: settings.jwt_previous_secrets.clone(),
        accept_hs256: settings.jwt_accept_hs256,
        serving: role == Role::Server,
        source,
        rotation: settings.jwt_key_rotation,
        token_lifetime: Duration::from_secs(
            u64::try_from(
                settings
                    .access_token_expire_secs
                    .max(settings.refresh_token_expire_secs),
            )
            .unwrap_or(u64::MAX),
        ),
    })
}

pub struct Application {
    http: Bound,
    grpc: Bound,
    prom: Bound,
    /// The operator API, when `ADMIN_PORT` is set.
    admin: Option<Bound>,
    admin_keys: Arc<ApiKeys>,
    state: AppState,
    core: Core,
    shutdown_timeout: Duration,
    shutdown_delay: Duration,
    http_settings: HttpSettings,
    connection_limits: http::server::ConnectionLimits,
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
        let core = Core::open(&settings, clock, Role::Server).await?;
        let state = AppState::new(Services {
            auth: core.auth.clone(),
            account: core.account.clone(),
            health: Health::new(core.cache.clone(), core.metrics.clone()),
            metrics: core.metrics.clone(),
            keys: core.keys.ring(),
            recovery: core.recovery.clone(),
        });
        let admin = match settings.admin_port {
            0 => None,
            port => {
                anyhow::ensure!(
                    !settings.admin_api_keys.is_empty(),
                    "invalid value for ADMIN_PORT: the operator API needs ADMIN_API_KEYS"
                );
                Some(
                    bind(
                        SocketAddr::new(settings.admin_bind_address, port),
                        "ADMIN_PORT",
                    )
                    .await?,
                )
            }
        };
        let at = |port| SocketAddr::new(settings.bind_address, port);
        Ok(Self {
            http: bind(at(settings.http_port), "HTTP_PORT").await?,
            grpc: bind(at(settings.grpc_port), "GRPC_PORT").await?,
            prom: bind(at(settings.prom_port), "PROM_PORT").await?,
            admin,
            admin_keys: Arc::new(ApiKeys::new(&settings.admin_api_keys)),
            state,
            core,
            shutdown_timeout: settings.shutdown_timeout,
            shutdown_delay: settings.shutdown_delay,
            http_settings: HttpSettings {
                body_limit: settings.http_body_limit,
                trusted_proxies: settings.trusted_proxies.clone(),
                request_timeout: settings.http_request_timeout,
                max_concurrent_requests: settings.http_max_concurrent_requests,
                max_queued_requests: settings.http_max_queued_requests,
            },
            connection_limits: http::server::ConnectionLimits {
                head_timeout: settings.http_header_read_timeout,
                idle_timeout: settings.http_idle_timeout,
                max_connections: settings.max_connections,
            },
        })
    }

    /// The services, as the CLI and tests reach them.
    pub fn core(&self) -> &Core {
        &self.core
    }

    pub fn metrics(&self) -> Metrics {
        self.core.metrics.clone()
    }

    /// The store the services use: the database behind the two-tier cache.
    pub fn cache(&self) -> Arc<CachedStore> {
        self.core.cache.clone()
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

    /// The operator API's address, when `ADMIN_PORT` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|b| b.addr)
    }

    /// The HTTP routes with all their layers, as `run_until` serves them (the property tests
    /// drive it in process).
    pub fn http_router(&self) -> axum::Router {
        http::router(self.state.clone(), &self.http_settings)
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
            let app = self.http_router();
            http::server::serve(
                self.http.listener,
                app,
                self.connection_limits.clone(),
                stop.clone(),
            )
        };
        let grpc_server = grpc::server(self.state.auth.clone(), self.core.metrics.clone()).await?;
        grpc_server.follow_readiness(self.state.health.follow(requested.clone()).await);
        let grpc_health = grpc_server.health();
        let grpc_server = grpc_server.serve(self.grpc.listener, stop.clone().cancelled_owned());
        let metrics_server = axum::serve(
            self.prom.listener,
            http::metrics_router(self.core.metrics.clone()),
        )
        .with_graceful_shutdown(stop.clone().cancelled_owned());

        // The operator API, on its own listener (SPEC section 14), through the same accept
        // loop as the API: a key-holder's port gets the same head/idle deadlines, 431 and
        // connection cap.
        let admin_server = self.admin.map(|bound| {
            let app = crate::transport::operator::router(
                self.core.admin.clone(),
                self.admin_keys.clone(),
                self.core.metrics.clone(),
            );
            tokio::spawn(http::server::serve(
                bound.listener,
                app,
                self.connection_limits.clone(),
                stop.clone(),
            ))
        });

        let mut servers = tokio::spawn(async move {
            let ((), g, m) = tokio::join!(http_server, grpc_server, metrics_server.into_future());
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
        if let Some(mut admin_server) = admin_server {
            stop.cancel();
            match tokio::time::timeout(self.shutdown_timeout, &mut admin_server).await {
                Ok(Err(e)) => tracing::warn!(error = %e, "operator API server task"),
                Ok(Ok(())) => {}
                Err(_) => {
                    tracing::warn!(
                        "operator API calls still in flight after the shutdown timeout; closing them"
                    );
                    // Dropping the handle would leave them running past the pools' close.
                    admin_server.abort();
                }
            }
        }
        self.core.close().await;
        tracing::info!("stopped");
        result
    }
}
