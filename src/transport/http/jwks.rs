//! `GET /.well-known/jwks.json` (SPEC section 11): the public keys tokens are verified with,
//! as RFC 7517 JWKs, for gateways that check tokens without calling `Auth`.

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};

use super::AppState;

/// New keys are published ten minutes before they sign: a cache of five is always early.
const CACHE_CONTROL: &str = "public, max-age=300";

#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "keys",
    summary = "The public keys tokens are verified with (RFC 7517)",
    responses(
        (status = 200, description = "A JWK set; `Cache-Control: public, max-age=300`", body = crate::transport::http::openapi::JwksDoc, headers(("Cache-Control" = String)))
    ),
)]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(state.keys.load().jwks()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    response
}
