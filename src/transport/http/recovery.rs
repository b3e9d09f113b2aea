//! The routes of SPEC section 13: forgotten password, reset, email verification and the
//! account view; and the revert of an email change (rule 15.2).

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    error::{ApiError, Message},
    extract::{Authenticated, JsonBody, required},
    state::AppState,
};
use crate::{
    domain::clock::rfc3339,
    domain::{ClientInfo, Email, Password},
};

const OK: Message = Message { msg: "ok" };

/// The routes, each with its OpenAPI path.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(forgot_password))
        .routes(routes!(reset_password))
        .routes(routes!(verify_email))
        .routes(routes!(revert_email))
        .routes(routes!(request_verification))
        // Merged with the DELETE of the same path (section 9).
        .routes(routes!(account))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ForgotRequest {
    #[schema(required = true, value_type = String, min_length = 1, max_length = 320, format = Email)]
    email: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/account/auth/password/forgot",
    tag = "recovery",
    summary = "Ask for a password reset mail",
    request_body(content = ForgotRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Always, known email or not: `{\"msg\":\"ok\"}`", body = Message),
        (status = 400, description = "A field missing, empty or not acceptable, or a body that is not the JSON object expected: `invalid parameter`", body = Message),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = Message),
        (status = 503, description = "The database is unreachable, the hashing queue is full, the request timed out or too many are waiting: `service unavailable`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait")))
    ),
)]
pub async fn forgot_password(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(req): JsonBody<ForgotRequest>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let email = required("email", req.email, Email::parse)?;
    state.recovery.forgot_password(email, &client).await?;
    Ok((StatusCode::ACCEPTED, Json(OK)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ResetRequest {
    #[schema(required = true, value_type = String, min_length = 1)]
    token: Option<String>,
    #[schema(required = true, value_type = String, min_length = 8, max_length = 128)]
    new_password: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/account/auth/password/reset",
    tag = "recovery",
    summary = "Set a new password with the token from the mail; every session ends",
    request_body(content = ResetRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Changed: `{\"msg\":\"ok\"}`", body = Message),
        (status = 400, description = "A field missing, empty or not acceptable, or a body that is not the JSON object expected: `invalid parameter`", body = Message),
        (status = 400, description = "`invalid or expired token` or `password too weak`", body = Message),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = Message),
        (status = 503, description = "The database is unreachable, the hashing queue is full, the request timed out or too many are waiting: `service unavailable`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait")))
    ),
)]
pub async fn reset_password(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<ResetRequest>,
) -> Result<Json<Message>, ApiError> {
    let token = required("token", req.token, Ok)?;
    let new = required("new_password", req.new_password, Password::parse)?;
    state.recovery.reset_password(&token, new).await?;
    Ok(Json(OK))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct VerifyRequest {
    #[schema(required = true, value_type = String, min_length = 1)]
    token: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/account/auth/email/verify",
    tag = "recovery",
    summary = "Confirm the email with the token from the mail",
    request_body(content = VerifyRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Verified: `{\"msg\":\"ok\"}`", body = Message),
        (status = 400, description = "A field missing, empty or not acceptable, or a body that is not the JSON object expected: `invalid parameter`", body = Message),
        (status = 400, description = "`invalid or expired token`", body = Message),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = Message),
        (status = 503, description = "The database is unreachable, the hashing queue is full, the request timed out or too many are waiting: `service unavailable`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait")))
    ),
)]
pub async fn verify_email(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<VerifyRequest>,
) -> Result<Json<Message>, ApiError> {
    let token = required("token", req.token, Ok)?;
    state.recovery.verify_email(&token).await?;
    Ok(Json(OK))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RevertRequest {
    #[schema(required = true, value_type = String, min_length = 1)]
    token: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/account/auth/email/revert",
    tag = "recovery",
    summary = "Undo an email change with the token from the notice sent to the old address; every session ends",
    request_body(content = RevertRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The old address is back, verified; every session of the customer ended: `{\"msg\":\"ok\"}`", body = Message),
        (status = 400, description = "A field missing, empty or not acceptable, or a body that is not the JSON object expected: `invalid parameter`", body = Message),
        (status = 400, description = "`invalid or expired token` (unknown, used, expired, or of a change already undone) or `duplicate entry` (another customer has the old address now; the token stays usable)", body = Message),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = Message),
        (status = 500, description = "An unexpected failure: `server error`", body = Message),
        (status = 503, description = "The database is unreachable, the hashing queue is full, the request timed out or too many are waiting: `service unavailable`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait")))
    ),
)]
pub async fn revert_email(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<RevertRequest>,
) -> Result<Json<Message>, ApiError> {
    let token = required("token", req.token, Ok)?;
    state.recovery.revert_email(&token).await?;
    Ok(Json(OK))
}

#[utoipa::path(
    post,
    path = "/api/account/info/email/verification",
    tag = "recovery",
    summary = "Ask for a verification mail",
    responses(
        (status = 202, description = "Queued (or silently limited): `{\"msg\":\"ok\"}`", body = Message),
        (status = 401, description = "No usable access token: an empty body when it is missing, malformed or badly signed; `{\"msg\"}` (`token expired`, `token revoked`) otherwise"),
        (status = 404, description = "The customer of the token no longer exists: `customer not found`", body = Message),
        (status = 503, description = "The database is unreachable, the hashing queue is full, the request timed out or too many are waiting: `service unavailable`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait")))
    ),
    security(("bearer" = [])),
)]
pub async fn request_verification(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    client: ClientInfo,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    state
        .recovery
        .request_verification(caller.customer, &client)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(OK)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountBody {
    /// A string: Sonyflake ids pass 2^53, beyond what JSON numbers hold exactly in
    /// JavaScript.
    id: String,
    email: String,
    email_verified: bool,
    active: bool,
    /// RFC 3339 UTC; `null` for a row stored without it.
    created_at: Option<String>,
    /// The active second factors (`totp`); `[]` when none.
    #[schema(value_type = Vec<String>)]
    mfa: Vec<&'static str>,
}

#[utoipa::path(
    get,
    path = "/api/account/info/account",
    tag = "recovery",
    summary = "The account: id, email, whether it is verified, state",
    responses(
        (status = 200, description = "The account", body = AccountBody),
        (status = 401, description = "No usable access token: an empty body when it is missing, malformed or badly signed; `{\"msg\"}` (`token expired`, `token revoked`) otherwise"),
        (status = 404, description = "The customer of the token no longer exists: `customer not found`", body = Message),
        (status = 503, description = "The database is unreachable, the hashing queue is full, the request timed out or too many are waiting: `service unavailable`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait")))
    ),
    security(("bearer" = [])),
)]
pub async fn account(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<AccountBody>, ApiError> {
    let a = state.recovery.account(caller.customer).await?;
    let mfa = state.auth.second_factors(caller.customer).await?;
    Ok(Json(AccountBody {
        mfa,
        id: a.id.to_string(),
        email: a.personal.email.into_inner(),
        email_verified: a.email_verified,
        active: a.active,
        created_at: a.created_at.map(rfc3339),
    }))
}
