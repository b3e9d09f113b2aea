//! `GET /.well-known/jwks.json` (SPEC section 11): the public keys tokens are verified with,
//! as RFC 7517 JWKs, for gateways that check tokens without calling `Auth`.

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::state::AppState;

/// New keys are published ten minutes before they sign: a cache of five is always early.
const CACHE_CONTROL: &str = "public, max-age=300";

/// The route, with its OpenAPI path.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(jwks))
}

// The key ring renders the set; these describe it.
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

#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "keys",
    summary = "The public keys tokens are verified with (RFC 7517)",
    responses(
        (status = 200, description = "A JWK set; `Cache-Control: public, max-age=300`", body = JwksDoc, headers(("Cache-Control" = String)))
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
