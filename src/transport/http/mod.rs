//! The HTTP API of SPEC section 1 under `/api/account`, the probes, and `/metrics` on its
//! own port. Handlers only translate; the services hold the logic.
//!
//! One module per resource (`auth`, `profile`, `sessions`, `recovery`, `health`, `jwks`),
//! each with its handlers, its bodies and a `routes()` that adds every handler together
//! with its OpenAPI path; `api` merges them into one router and one document and serves
//! the document. The shared pieces are files of their own (`state`, `error`, `extract`,
//! `client`), imported by the resources directly; this file only declares, re-exports and
//! assembles: `router` adds the fallbacks and the middleware to `api`'s routes.

mod api;
mod auth;
mod client;
mod error;
mod extract;
mod health;
mod jwks;
mod limits;
mod mfa;
mod observe;
pub mod probe;
mod profile;
mod recovery;
mod scrape;
pub mod server;
mod sessions;
mod state;

use std::sync::Arc;

use axum::{Router, extract::DefaultBodyLimit, http::StatusCode, middleware};
use tower_http::catch_panic::CatchPanicLayer;

pub use api::ROUTES;
pub use auth::TokenPairBody;
pub use client::{ClientAddr, client_address};
pub use error::ApiError;
pub use profile::{PersonalInfoBody, ShippingInfoBody};
pub use scrape::metrics_router;
pub use sessions::SessionsBody;
pub use state::{AppState, Services};

use crate::domain::IpNet;

/// How the HTTP server treats requests.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub body_limit: usize,
    pub trusted_proxies: Vec<IpNet>,
    pub request_timeout: std::time::Duration,
    pub max_concurrent_requests: usize,
    pub max_queued_requests: usize,
    pub max_queue_wait: std::time::Duration,
}

/// The API's routes with the fallbacks and every middleware, outermost last.
pub fn router(state: AppState, settings: &HttpSettings) -> Router {
    let observer = Arc::new(observe::Observer::new(
        state.metrics.clone(),
        settings.trusted_proxies.clone(),
    ));
    api::routes()
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .fallback(|| async { ApiError::NotFound })
        .layer(DefaultBodyLimit::max(settings.body_limit))
        .layer(CatchPanicLayer::custom(|_| {
            error::message(StatusCode::INTERNAL_SERVER_ERROR, "server error")
        }))
        .layer(middleware::from_fn_with_state(
            limits::RequestLimits {
                shedder: limits::Shedder::new(
                    limits::Queue {
                        running: settings.max_concurrent_requests,
                        waiting: settings.max_queued_requests,
                        wait: settings.max_queue_wait,
                    },
                    state.metrics.clone(),
                ),
                refusal_delay: state.auth.refusal_delay(),
                timeout: settings.request_timeout,
                body_limit: settings.body_limit,
            },
            limits::guard,
        ))
        .layer(middleware::from_fn_with_state(observer, observe::observe))
        .with_state(state)
}
