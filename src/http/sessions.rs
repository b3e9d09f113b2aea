//! The routes of SPEC section 9: logout, logout everywhere, the session list, ending one
//! session, password change and account deletion.

use axum::{
    Json,
    extract::{Path, State},
};
use serde::{Deserialize, Serialize};

use super::{
    AppState,
    error::{ApiError, Message},
    extract::{Authenticated, JsonBody, MaybeAuthenticated, RawBody},
    handlers::required,
};
use crate::{
    clock::rfc3339,
    domain::{Password, Session},
};

const OK: Message = Message { msg: "ok" };

#[derive(Deserialize)]
pub struct LogoutRequest {
    refresh_token: Option<String>,
}

/// The session of the access token in the header, or else of the refresh token in the body.
pub async fn logout(
    State(state): State<AppState>,
    MaybeAuthenticated(caller): MaybeAuthenticated,
    RawBody(body): RawBody,
) -> Result<Json<Message>, ApiError> {
    if let Some(caller) = caller {
        state.auth.logout(caller).await?;
        return Ok(Json(OK));
    }
    let token = serde_json::from_slice::<LogoutRequest>(&body)
        .ok()
        .and_then(|r| r.refresh_token)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized)?;
    state.auth.logout_with_refresh_token(&token).await?;
    Ok(Json(OK))
}

pub async fn logout_all(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Message>, ApiError> {
    state.auth.logout_all(caller.customer).await?;
    Ok(Json(OK))
}

#[derive(Serialize)]
pub struct SessionBody {
    id: String,
    created_at: String,
    refreshed_at: String,
    expires_at: String,
    user_agent: String,
    client_ip: String,
    current: bool,
}

#[derive(Serialize)]
pub struct SessionsBody {
    sessions: Vec<SessionBody>,
}

pub async fn list_sessions(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<SessionsBody>, ApiError> {
    let sessions = state.auth.sessions_of(caller.customer).await?;
    Ok(Json(SessionsBody {
        sessions: sessions
            .into_iter()
            .map(|s: Session| SessionBody {
                current: Some(s.id) == caller.session,
                id: s.id.to_string(),
                created_at: rfc3339(s.created_at),
                refreshed_at: rfc3339(s.refreshed_at),
                expires_at: rfc3339(s.expires_at),
                user_agent: s.user_agent,
                client_ip: s.client_ip,
            })
            .collect(),
    }))
}

pub async fn end_session(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Message>, ApiError> {
    state.auth.end_session(caller.customer, &id).await?;
    Ok(Json(OK))
}

#[derive(Deserialize)]
pub struct PasswordChangeRequest {
    current_password: Option<String>,
    new_password: Option<String>,
}

pub async fn change_password(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(req): JsonBody<PasswordChangeRequest>,
) -> Result<Json<Message>, ApiError> {
    let current = required(
        "current_password",
        req.current_password,
        Password::parse_login,
    )?;
    let new = required("new_password", req.new_password, Password::parse)?;
    state.auth.change_password(caller, current, new).await?;
    Ok(Json(OK))
}

#[derive(Deserialize)]
pub struct DeleteAccountRequest {
    password: Option<String>,
}

pub async fn delete_account(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(req): JsonBody<DeleteAccountRequest>,
) -> Result<Json<Message>, ApiError> {
    let password = required("password", req.password, Password::parse_login)?;
    state.auth.delete_account(caller.customer, password).await?;
    Ok(Json(OK))
}
