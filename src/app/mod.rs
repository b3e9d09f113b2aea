//! Builds the whole service from its settings: store, services, listeners. One place wires
//! everything; tests call the same `Application::build` on port 0.
//!
//! `core.rs` builds the services, `tasks.rs` runs their background tasks, and this file
//! binds the listeners and serves until the shutdown signal.

mod core;
mod tasks;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use self::core::{Core, Role};
use crate::{
    config::Settings,
    domain::clock::{Clock, SystemClock},
    metrics::Metrics,
    service::operator::ApiKeys,
    service::readiness::Health,
    storage::cache::CachedStore,
    transport::ShutdownSettings,
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

pub struct Application {
    http: Bound,
    grpc: Bound,
    prom: Bound,
    /// The operator API, when `ADMIN_PORT` is set.
    admin: Option<Bound>,
    admin_keys: Arc<ApiKeys>,
    state: AppState,
    core: Core,
    shutdown: ShutdownSettings,
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
        // `config` made sure a port comes with keys.
        let operator = &settings.operator;
        let admin = match operator.port {
            0 => None,
            port => Some(bind(SocketAddr::new(operator.bind_address, port), "ADMIN_PORT").await?),
        };
        let listen = &settings.listen;
        let at = |port| SocketAddr::new(listen.bind_address, port);
        Ok(Self {
            http: bind(at(listen.http_port), "HTTP_PORT").await?,
            grpc: bind(at(listen.grpc_port), "GRPC_PORT").await?,
            prom: bind(at(listen.prom_port), "PROM_PORT").await?,
            admin,
            admin_keys: Arc::new(ApiKeys::new(&operator.api_keys)),
            state,
            core,
            shutdown: settings.shutdown.clone(),
            http_settings: settings.http.api(),
            connection_limits: settings.http.connections(),
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
                drain(
                    &self.state.health,
                    &grpc_health,
                    &self.shutdown,
                    &stop,
                    &mut servers,
                )
                .await
            }
        };
        if let Some(admin_server) = admin_server {
            stop.cancel();
            stop_admin(admin_server, self.shutdown.timeout).await;
        }
        self.core.close().await;
        tracing::info!("stopped");
        result
    }
}

/// After the shutdown signal: unready, a pause while load balancers drain, then the
/// listeners close and requests in flight get up to the shutdown timeout.
async fn drain(
    health: &Health,
    grpc_health: &tonic_health::server::HealthReporter,
    shutdown: &ShutdownSettings,
    stop: &CancellationToken,
    servers: &mut tokio::task::JoinHandle<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    health.start_shutdown();
    grpc::set_not_serving(grpc_health).await;
    if !shutdown.delay.is_zero() {
        tracing::info!(delay = ?shutdown.delay, "shutting down: unready, still serving while load balancers drain");
        tokio::time::sleep(shutdown.delay).await;
    }
    tracing::info!(timeout = ?shutdown.timeout, "shutting down: finishing requests in flight");
    stop.cancel();
    match tokio::time::timeout(shutdown.timeout, &mut *servers).await {
        Ok(joined) => joined.context("server task")?,
        Err(_) => {
            tracing::warn!("requests still in flight after the shutdown timeout; closing them");
            servers.abort();
            Ok(())
        }
    }
}

/// Waits for the operator API's calls in flight, up to `timeout`.
async fn stop_admin(mut admin_server: tokio::task::JoinHandle<()>, timeout: Duration) {
    match tokio::time::timeout(timeout, &mut admin_server).await {
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
