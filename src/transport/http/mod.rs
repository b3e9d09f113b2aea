//! The HTTP API of SPEC section 1 under `/api/account`, the probes, and `/metrics` on its
//! own port. Handlers only translate; the services hold the logic. All middleware is
//! assembled in `router`.

mod client;
mod error;
mod extract;
mod handlers;
mod health;
mod jwks;
mod limits;
mod observe;
pub mod openapi;
pub mod probe;
mod recovery;
pub mod server;
mod sessions;

use std::sync::Arc;

use axum::{
    Router,
    extract::{DefaultBodyLimit, State},
    http::{StatusCode, header},
    middleware,
    response::IntoResponse,
    routing::{delete, get, post, put},
};
use tower_http::catch_panic::CatchPanicLayer;

pub use client::{ClientAddr, client_address};
pub use error::{ApiError, ErrorChain};
pub use handlers::{PersonalInfoBody, ShippingInfoBody, TokenPairBody};
pub use observe::ROUTES;
pub use sessions::SessionsBody;

use crate::{
    domain::IpNet, metrics::Metrics, service::account::AccountService, service::auth::AuthService,
    service::keys::KeyRing, service::readiness::Health, service::recovery::RecoveryService,
};

/// The handles every handler may use. One `Arc`: axum clones the state for every
/// extractor of every request, so a clone must be a single reference count.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

pub struct Services {
    pub auth: AuthService,
    pub account: AccountService,
    pub health: Health,
    pub metrics: Metrics,
    pub keys: KeyRing,
    /// Password reset and email verification (SPEC section 13).
    pub recovery: RecoveryService,
}

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

pub const API_PREFIX: &str = "/api/account";

/// A route of the API: its path under `API_PREFIX`.
macro_rules! api {
    ($path:literal) => {
        concat!("/api/account", $path)
    };
}

/// How the HTTP server treats requests.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub body_limit: usize,
    pub trusted_proxies: Vec<IpNet>,
    pub request_timeout: std::time::Duration,
    pub max_concurrent_requests: usize,
    pub max_queued_requests: usize,
}

pub fn router(state: AppState, settings: &HttpSettings) -> Router {
    // Full paths rather than a nested router: nesting rewrites every request's URI.
    let observer = Arc::new(observe::Observer::new(
        state.metrics.clone(),
        settings.trusted_proxies.clone(),
    ));
    Router::new()
        .route(api!("/auth/signup"), post(handlers::signup))
        .route(api!("/auth/login"), post(handlers::login))
        .route(api!("/auth/refresh"), post(handlers::refresh))
        .route(api!("/auth/logout"), post(sessions::logout))
        .route(api!("/auth/logout-all"), post(sessions::logout_all))
        .route(api!("/info/sessions"), get(sessions::list_sessions))
        .route(api!("/info/sessions/{id}"), delete(sessions::end_session))
        .route(api!("/info/password"), put(sessions::change_password))
        .route(api!("/info/account"), delete(sessions::delete_account))
        .route(
            api!("/info/person"),
            get(handlers::get_personal_info).put(handlers::update_personal_info),
        )
        .route(
            api!("/info/shipping"),
            get(handlers::get_shipping_info).put(handlers::update_shipping_info),
        )
        .merge(recovery::routes())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/.well-known/jwks.json", get(jwks::jwks))
        .route(api!("/openapi.json"), get(openapi::openapi_json))
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .fallback(handlers::not_found)
        .layer(DefaultBodyLimit::max(settings.body_limit))
        .layer(CatchPanicLayer::custom(|_| {
            error::message(StatusCode::INTERNAL_SERVER_ERROR, "server error")
        }))
        .layer(middleware::from_fn_with_state(
            limits::RequestLimits {
                shedder: limits::Shedder::new(
                    settings.max_concurrent_requests,
                    settings.max_queued_requests,
                    state.metrics.clone(),
                ),
                timeout: settings.request_timeout,
            },
            limits::guard,
        ))
        .layer(middleware::from_fn_with_state(observer, observe::observe))
        .with_state(state)
}

/// `GET /metrics`, for the metrics port.
pub fn metrics_router(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .with_state(metrics)
}

async fn serve_metrics(State(metrics): State<Metrics>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        metrics.render(),
    )
}
