//! The routes of SPEC section 13: forgotten password, reset, email verification and the
//! account view. Their own router, merged into the API's.

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use serde::{Deserialize, Serialize};

use super::{
    AppState,
    error::{ApiError, Message},
    extract::{Authenticated, JsonBody},
    handlers::required,
};
use crate::{
    clock::rfc3339,
    domain::{ClientInfo, Email, Password},
};

const OK: Message = Message { msg: "ok" };

/// The routes, with their full paths (as the rest of the API: no nesting).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/account/auth/password/forgot", post(forgot_password))
        .route("/api/account/auth/password/reset", post(reset_password))
        .route("/api/account/auth/email/verify", post(verify_email))
        .route(
            "/api/account/info/email/verification",
            post(request_verification),
        )
        // Merged with the DELETE of the same path (section 9).
        .route("/api/account/info/account", get(account))
}

#[derive(Deserialize)]
pub struct ForgotRequest {
    email: Option<String>,
}

pub async fn forgot_password(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(req): JsonBody<ForgotRequest>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let email = required("email", req.email, Email::parse)?;
    state.recovery.forgot_password(email, &client).await?;
    Ok((StatusCode::ACCEPTED, Json(OK)))
}

#[derive(Deserialize)]
pub struct ResetRequest {
    token: Option<String>,
    new_password: Option<String>,
}

pub async fn reset_password(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<ResetRequest>,
) -> Result<Json<Message>, ApiError> {
    let token = required("token", req.token, Ok)?;
    let new = required("new_password", req.new_password, Password::parse)?;
    state.recovery.reset_password(&token, new).await?;
    Ok(Json(OK))
}

#[derive(Deserialize)]
pub struct VerifyRequest {
    token: Option<String>,
}

pub async fn verify_email(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<VerifyRequest>,
) -> Result<Json<Message>, ApiError> {
    let token = required("token", req.token, Ok)?;
    state.recovery.verify_email(&token).await?;
    Ok(Json(OK))
}

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

#[derive(Serialize)]
pub struct AccountBody {
    /// A string: Sonyflake ids pass 2^53, beyond what JSON numbers hold exactly in
    /// JavaScript.
    id: String,
    email: String,
    email_verified: bool,
    active: bool,
    /// RFC 3339 UTC; `null` for a row stored without it.
    created_at: Option<String>,
}

pub async fn account(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<AccountBody>, ApiError> {
    let a = state.recovery.account(caller.customer).await?;
    Ok(Json(AccountBody {
        id: a.id.to_string(),
        email: a.personal.email.into_inner(),
        email_verified: a.email_verified,
        active: a.active,
        created_at: a.created_at.map(rfc3339),
    }))
}
