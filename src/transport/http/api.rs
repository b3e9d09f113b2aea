//! The API in one place: every resource module brings its routes together with their
//! OpenAPI paths, and they are merged here into one router and one document, the document
//! served at `GET /api/account/openapi.json` (SPEC section 12).
//!
//! `routes!` takes a route's path and methods from the handler's `#[utoipa::path]`, so a
//! route cannot be served without being documented, nor documented without being served.
//! To add a resource: a module whose `routes()` adds each handler with `routes!`, and one
//! line in `resources`.

use std::sync::LazyLock;

use axum::{
    Router,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{auth, health, jwks, mfa, profile, recovery, sessions, state::AppState};

/// What the document says besides its paths.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "saga-account",
        description = "Account and authentication service: sign-up, login, tokens, sessions, profile, password reset and email verification. Errors are `{\"msg\": \"...\"}`. Access tokens go in `Authorization: bearer <token>`.",
    ),
    modifiers(&BearerScheme),
)]
struct ApiDoc;

/// The `bearer` scheme the secured operations name.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Every resource of the API, with full paths (no nesting: it would rewrite every
/// request's URI), and this document's own route.
fn resources() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::routes())
        .merge(profile::routes())
        .merge(sessions::routes())
        .merge(mfa::routes())
        .merge(recovery::routes())
        .merge(health::routes())
        .merge(jwks::routes())
        .routes(routes!(openapi_json))
}

/// The API's routes, before the fallbacks, the middleware and the state (`super::router`).
pub fn routes() -> Router<AppState> {
    resources().split_for_parts().0
}

/// The document, built once: it depends on the code only, not on the settings.
static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(|| resources().into_openapi());

static DOCUMENT_JSON: LazyLock<String> = LazyLock::new(|| DOCUMENT.to_json().unwrap_or_default());

/// Every route pattern of the API, read from the document (and so the same as the
/// router's): requests are labelled by these in metrics and spans, anything else as
/// `unmatched`, so random paths cannot grow the label set.
pub static ROUTES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| DOCUMENT.paths.paths.keys().map(String::as_str).collect());

#[utoipa::path(
    get,
    path = "/api/account/openapi.json",
    tag = "meta",
    summary = "This document",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json")),
)]
pub async fn openapi_json() -> Response {
    let mut response = DOCUMENT_JSON.as_str().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
