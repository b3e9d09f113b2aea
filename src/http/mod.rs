//! The HTTP API of SPEC section 1 under `/api/account`. Handlers only translate; the
//! services hold the logic. All middleware is assembled in `router`.

mod error;
mod extract;
mod handlers;
mod health;
mod observe;

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use tower_http::catch_panic::CatchPanicLayer;

pub use error::{ApiError, ErrorChain};
pub use handlers::{PersonalInfoBody, ShippingInfoBody, TokenPairBody};
pub use health::{Health, Readiness};
pub use observe::ROUTES;

use crate::{account::AccountService, auth::AuthService, metrics::Metrics};

/// The handles every handler may use. One `Arc`: axum clones the state for every
/// extractor of every request, so a clone must be a single reference count.
#[derive(Clone)]
pub struct AppState(std::sync::Arc<Services>);

pub struct Services {
    pub auth: AuthService,
    pub account: AccountService,
    pub health: Health,
    pub metrics: Metrics,
}

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(std::sync::Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

pub const API_PREFIX: &str = "/api/account";

pub fn router(state: AppState, body_limit: usize) -> Router {
    let api = Router::new()
        .route("/auth/signup", post(handlers::signup))
        .route("/auth/login", post(handlers::login))
        .route("/auth/refresh", post(handlers::refresh))
        .route(
            "/info/person",
            get(handlers::get_personal_info).put(handlers::update_personal_info),
        )
        .route(
            "/info/shipping",
            get(handlers::get_shipping_info).put(handlers::update_shipping_info),
        )
        .method_not_allowed_fallback(handlers::method_not_allowed);
    let metrics = state.metrics.clone();
    Router::new()
        .nest(API_PREFIX, api)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(handlers::not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(|_| {
            error::message(StatusCode::INTERNAL_SERVER_ERROR, "server error")
        }))
        .layer(middleware::from_fn(cors))
        .layer(middleware::from_fn_with_state(metrics, observe::observe))
        .with_state(state)
}

const CORS_HEADERS: [(HeaderName, &str); 5] = [
    (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
    (header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true"),
    (
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        "Content-Type, Content-Length, Accept-Encoding, X-CSRF-Token, Authorization, Accept, Origin, Cache-Control, X-Requested-With",
    ),
    (
        header::ACCESS_CONTROL_ALLOW_METHODS,
        "POST, DELETE, GET, PUT, PATCH, OPTIONS",
    ),
    (header::ACCESS_CONTROL_MAX_AGE, "86400"),
];

/// CORS headers on every response; any `OPTIONS` request is answered 204 with no body,
/// whatever its path, as the Go middleware does.
async fn cors(request: Request, next: Next) -> Response {
    let mut response = if request.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    for (name, value) in CORS_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
