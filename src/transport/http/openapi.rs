//! `GET /api/account/openapi.json` (SPEC section 12): the OpenAPI 3.1 document, generated
//! from the handlers' `#[utoipa::path]` annotations and the body types, so that it cannot
//! drift from the code (a test compares it with the router).

use std::sync::LazyLock;

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use super::{handlers, health, jwks, recovery, sessions};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "saga-account",
        description = "Account and authentication service: sign-up, login, tokens, sessions, profile, password reset and email verification. Errors are `{\"msg\": \"...\"}`. Access tokens go in `Authorization: bearer <token>`.",
    ),
    paths(
        handlers::signup,
        handlers::login,
        handlers::refresh,
        handlers::get_personal_info,
        handlers::update_personal_info,
        handlers::get_shipping_info,
        handlers::update_shipping_info,
        sessions::logout,
        sessions::logout_all,
        sessions::list_sessions,
        sessions::end_session,
        sessions::change_password,
        sessions::delete_account,
        recovery::forgot_password,
        recovery::reset_password,
        recovery::verify_email,
        recovery::request_verification,
        recovery::account,
        health::healthz,
        health::readyz,
        jwks::jwks,
        openapi_json,
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

/// The body of `/readyz`, for the document only.
#[derive(ToSchema)]
#[allow(dead_code, reason = "describes a body serialised elsewhere")]
pub struct ReadinessDoc {
    /// `ready` or `unready`.
    status: String,
    checks: ReadinessChecksDoc,
}

#[derive(ToSchema)]
#[allow(dead_code, reason = "describes a body serialised elsewhere")]
pub struct ReadinessChecksDoc {
    /// `ok` or `unreachable`.
    database: String,
    /// `ok`, `degraded` or `not configured`.
    redis: String,
    shutting_down: bool,
}

/// A JWK set (RFC 7517), for the document only.
#[derive(ToSchema)]
#[allow(dead_code, reason = "describes a body serialised elsewhere")]
pub struct JwksDoc {
    keys: Vec<JwkDoc>,
}

/// One public key: `OKP`/`Ed25519` (`x`) or `EC`/`P-256` (`x`, `y`).
#[derive(ToSchema)]
#[allow(dead_code, reason = "describes a body serialised elsewhere")]
pub struct JwkDoc {
    kty: String,
    crv: String,
    x: String,
    y: Option<String>,
    kid: String,
    alg: String,
    #[schema(rename = "use")]
    use_: String,
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| document().to_json().unwrap_or_default());

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[utoipa::path(
    get,
    path = "/api/account/openapi.json",
    tag = "meta",
    summary = "This document",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json")),
)]
pub async fn openapi_json() -> Response {
    let mut response = DOCUMENT.as_str().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
