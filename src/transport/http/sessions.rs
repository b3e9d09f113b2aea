//! The routes of SPEC section 9: logout, logout everywhere, the session list, ending one
//! session, password change and account deletion.

use axum::{
    Json,
    extract::{Path, State},
};
use serde::{Deserialize, Serialize};

use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    error::{ApiError, Message},
    extract::{Authenticated, JsonBody, MaybeAuthenticated, RawBody, required},
    state::AppState,
};
use crate::{
    domain::clock::rfc3339,
    domain::{Error, Invalid, Password, Session, SessionId},
};

const OK: Message = Message { msg: "ok" };

/// The routes, each with its OpenAPI path.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(list_sessions))
        .routes(routes!(end_session))
        .routes(routes!(change_password))
        // The GET of the same path is recovery's (section 13); the two are merged.
        .routes(routes!(delete_account))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LogoutRequest {
    /// Needed only without an access token; an empty one is as none.
    refresh_token: Option<String>,
}

/// The session of the access token in the header, or else of the refresh token in the body.
#[utoipa::path(
    post,
    path = "/api/account/auth/logout",
    tag = "sessions",
    summary = "End the current session (by access token, or by the refresh token in the body)",
    request_body(content = Option<LogoutRequest>, description = "Only when no access token is sent", content_type = "application/json"),
    responses(
        (status = 400, description = "A body that is not the documented JSON object: `invalid parameter`", body = Message),
        (status = 200, description = "The session ended: `{\"msg\":\"ok\"}`", body = Message),
        (status = 401, description = "No usable token (empty body), or `token expired`/`token revoked`"),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = Message),
        (status = 503, description = "The database is unreachable, the hashing queue is full, the request timed out or too many are waiting: `service unavailable`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait")))
    ),
    security((), ("bearer" = [])),
)]
pub async fn logout(
    State(state): State<AppState>,
    MaybeAuthenticated(caller): MaybeAuthenticated,
    RawBody(body): RawBody,
) -> Result<Json<Message>, ApiError> {
    // A body, when there is one, must be the documented object even if the access token
    // decides: bad input is refused, not ignored.
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        // `null` is as no body.
        serde_json::from_slice::<Option<LogoutRequest>>(&body)
            .map_err(|e| Error::from(Invalid::Body(e.to_string())))?
    };
    if let Some(caller) = caller {
        state.auth.logout(caller).await?;
        return Ok(Json(OK));
    }
    let token = request
        .and_then(|r| r.refresh_token)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized)?;
    state.auth.logout_with_refresh_token(&token).await?;
    Ok(Json(OK))
}

#[utoipa::path(
    post,
    path = "/api/account/auth/logout-all",
    tag = "sessions",
    summary = "End every session of the customer",
    responses(
        (status = 200, description = "Every session ended: `{\"msg\":\"ok\"}`", body = Message),
        (status = 401, description = "No usable access token: an empty body when it is missing, malformed or badly signed; `{\"msg\"}` (`token expired`, `token revoked`) otherwise"),
        (status = 503, description = "The database is unreachable, the hashing queue is full, the request timed out or too many are waiting: `service unavailable`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait")))
    ),
    security(("bearer" = [])),
)]
pub async fn logout_all(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Message>, ApiError> {
    state.auth.logout_all(caller.customer).await?;
    Ok(Json(OK))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionBody {
    id: String,
    created_at: String,
    refreshed_at: String,
    expires_at: String,
    user_agent: String,
    client_ip: String,
    /// Whether it is the caller's own session; absent in the operator API.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, value_type = bool)]
    current: Option<bool>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionsBody {
    sessions: Vec<SessionBody>,
}

impl SessionsBody {
    /// The customer's own list: `current` marks the caller's session.
    pub fn for_customer(sessions: Vec<Session>, own: Option<SessionId>) -> Self {
        Self::new(sessions, |id| Some(own == Some(id)))
    }

    /// The operator API's list, without `current`.
    pub fn for_operator(sessions: Vec<Session>) -> Self {
        Self::new(sessions, |_| None)
    }

    fn new(sessions: Vec<Session>, current: impl Fn(SessionId) -> Option<bool>) -> Self {
        Self {
            sessions: sessions
                .into_iter()
                .map(|s| SessionBody {
                    current: current(s.id),
                    id: s.id.to_string(),
                    created_at: rfc3339(s.created_at),
                    refreshed_at: rfc3339(s.refreshed_at),
                    expires_at: rfc3339(s.expires_at),
                    user_agent: s.user_agent,
                    client_ip: s.client_ip,
                })
                .collect(),
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/account/info/sessions",
    tag = "sessions",
    summary = "The customer's live sessions",
    responses(
        (status = 200, description = "Newest first", body = SessionsBody),
        (status = 401, description = "No usable access token: an empty body when it is missing, malformed or badly signed; `{\"msg\"}` (`token expired`, `token revoked`) otherwise"),
        (status = 503, description = "The database is unreachable, the hashing queue is full, the request timed out or too many are waiting: `service unavailable`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait")))
    ),
    security(("bearer" = [])),
)]
pub async fn list_sessions(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<SessionsBody>, ApiError> {
    let sessions = state.auth.sessions_of(caller.customer).await?;
    Ok(Json(SessionsBody::for_customer(sessions, caller.session)))
}

#[utoipa::path(
    delete,
    path = "/api/account/info/sessions/{id}",
    tag = "sessions",
    summary = "End one session of the customer",
    params(("id" = String, Path, description = "The session id, as listed")),
    responses(
        (status = 200, description = "The session ended: `{\"msg\":\"ok\"}`", body = Message),
        (status = 401, description = "No usable access token: an empty body when it is missing, malformed or badly signed; `{\"msg\"}` (`token expired`, `token revoked`) otherwise"),
        (status = 404, description = "`session not found`: no live session of this customer has that id", body = Message),
        (status = 503, description = "The database is unreachable, the hashing queue is full, the request timed out or too many are waiting: `service unavailable`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait")))
    ),
    security(("bearer" = [])),
)]
pub async fn end_session(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Message>, ApiError> {
    state.auth.end_session(caller.customer, &id).await?;
    Ok(Json(OK))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordChangeRequest {
    #[schema(required = true, value_type = String, min_length = 1, max_length = 128)]
    current_password: Option<String>,
    #[schema(required = true, value_type = String, min_length = 8, max_length = 128)]
    new_password: Option<String>,
    /// With an active second factor: a current TOTP code (or give `recovery_code`).
    #[schema(value_type = String, max_length = 64)]
    code: Option<String>,
    #[schema(value_type = String, max_length = 64)]
    recovery_code: Option<String>,
}

#[utoipa::path(
    put,
    path = "/api/account/info/password",
    tag = "sessions",
    summary = "Change the password; every other session ends",
    request_body(content = PasswordChangeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Changed: `{\"msg\":\"ok\"}`", body = Message),
        (status = 400, description = "A field missing, empty or not acceptable, or a body that is not the JSON object expected: `invalid parameter`", body = Message),
        (status = 400, description = "`password too weak`, or `invalid code` (a second factor is active and the code is missing or wrong)", body = Message),
        (status = 401, description = "`authentication failed` (wrong current password), or no usable access token (empty body, or `token expired`/`token revoked`)"),
        (status = 404, description = "The customer of the token no longer exists: `customer not found`", body = Message),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = Message),
        (status = 429, description = "A limit was reached: `too many attempts`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The database is unreachable, the hashing queue is full, the request timed out or too many are waiting: `service unavailable`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait")))
    ),
    security(("bearer" = [])),
)]
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
    let proof = super::mfa::proof(req.code, req.recovery_code)?;
    state
        .auth
        .change_password(caller, current, new, proof)
        .await?;
    Ok(Json(OK))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct DeleteAccountRequest {
    #[schema(required = true, value_type = String, min_length = 1, max_length = 128)]
    password: Option<String>,
    /// With an active second factor: a current TOTP code (or give `recovery_code`).
    #[schema(value_type = String, max_length = 64)]
    code: Option<String>,
    #[schema(value_type = String, max_length = 64)]
    recovery_code: Option<String>,
}

#[utoipa::path(
    delete,
    path = "/api/account/info/account",
    tag = "sessions",
    summary = "Delete the account: the customer, every session and cache entry",
    request_body(content = DeleteAccountRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Deleted: `{\"msg\":\"ok\"}`", body = Message),
        (status = 400, description = "A field missing, empty or not acceptable, or a body that is not the JSON object expected: `invalid parameter`; `invalid code` (a second factor is active and the code is missing or wrong)", body = Message),
        (status = 401, description = "`authentication failed` (wrong password), or no usable access token (empty body, or `token expired`/`token revoked`)"),
        (status = 404, description = "The customer of the token no longer exists: `customer not found`", body = Message),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = Message),
        (status = 429, description = "A limit was reached: `too many attempts`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The database is unreachable, the hashing queue is full, the request timed out or too many are waiting: `service unavailable`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait")))
    ),
    security(("bearer" = [])),
)]
pub async fn delete_account(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(req): JsonBody<DeleteAccountRequest>,
) -> Result<Json<Message>, ApiError> {
    let password = required("password", req.password, Password::parse_login)?;
    let proof = super::mfa::proof(req.code, req.recovery_code)?;
    state
        .auth
        .delete_account(caller.customer, password, proof)
        .await?;
    Ok(Json(OK))
}
