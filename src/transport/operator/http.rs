//! The operator API's HTTP transport under `/admin/v1`, served on `ADMIN_PORT` only:
//! `Authorization: ApiKey <name>.<secret>` on every call (401 with an empty body
//! otherwise), then the same `AdminService` calls the CLI makes.

use std::sync::Arc;

use axum::{
    Extension, Json, Router,
    extract::{Path, RawQuery, Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use serde::Serialize;

use crate::service::operator::{Actor, AdminService, ApiKeys};
use crate::{
    domain::clock::rfc3339,
    domain::{Account, CustomerId, Email, Invalid},
    metrics::Metrics,
    transport::http::{ApiError, SessionsBody},
};

#[derive(Clone)]
struct AdminState {
    admin: AdminService,
    keys: Arc<ApiKeys>,
    metrics: Metrics,
}

/// The name of the key a call was made with.
#[derive(Clone)]
struct KeyName(Arc<str>);

pub fn router(admin: AdminService, keys: Arc<ApiKeys>, metrics: Metrics) -> Router {
    let state = AdminState {
        admin,
        keys,
        metrics,
    };
    Router::new()
        .route("/admin/v1/customers", get(find_customer))
        .route(
            "/admin/v1/customers/{id}",
            get(get_customer).delete(delete_customer),
        )
        .route("/admin/v1/customers/{id}/deactivate", post(deactivate))
        .route("/admin/v1/customers/{id}/activate", post(activate))
        .route(
            "/admin/v1/customers/{id}/sessions",
            get(list_sessions).delete(revoke_sessions),
        )
        .route(
            "/admin/v1/customers/{id}/password-reset",
            post(password_reset),
        )
        .route("/admin/v1/customers/{id}/mfa", delete(mfa_reset))
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .fallback(|| async { ApiError::NotFound })
        // Outermost: nothing, not even "not found", is said without a key.
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

async fn authenticate(
    State(state): State<AdminState>,
    mut request: Request,
    next: Next,
) -> Response {
    let name = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| state.keys.check(h))
        .map(Arc::<str>::from);
    let Some(name) = name else {
        state.metrics.mail.admin_rejected.inc();
        tracing::warn!(
            target: "audit",
            method = %request.method(),
            path = request.uri().path(),
            "operator call refused: missing, malformed or unknown key"
        );
        return StatusCode::UNAUTHORIZED.into_response();
    };
    request.extensions_mut().insert(KeyName(name));
    next.run(request).await
}

#[derive(Serialize)]
struct CustomerBody {
    /// A string: Sonyflake ids pass 2^53, beyond what JSON numbers hold exactly in
    /// JavaScript.
    id: String,
    email: String,
    firstname: String,
    lastname: String,
    active: bool,
    email_verified: bool,
    created_at: Option<String>,
}

impl From<Account> for CustomerBody {
    fn from(a: Account) -> Self {
        Self {
            id: a.id.to_string(),
            email: a.personal.email.into_inner(),
            firstname: a.personal.first_name.into_inner(),
            lastname: a.personal.last_name.into_inner(),
            active: a.active,
            email_verified: a.email_verified,
            created_at: a.created_at.map(rfc3339),
        }
    }
}

#[derive(Serialize)]
struct Msg {
    msg: &'static str,
}

const OK: Msg = Msg { msg: "ok" };

fn customer_id(text: &str) -> Result<CustomerId, ApiError> {
    text.parse::<u64>()
        .map(CustomerId)
        .map_err(|_| Invalid::Body(format!("customer id {text:?} is not a number")).into())
}

async fn find_customer(
    State(state): State<AdminState>,
    Extension(KeyName(key)): Extension<KeyName>,
    RawQuery(query): RawQuery,
) -> Result<Json<CustomerBody>, ApiError> {
    let email = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "email")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
        .ok_or(Invalid::Missing("email"))?;
    let email = Email::parse(email)?;
    let account = state.admin.find_customer(Actor::Key(&key), &email).await?;
    Ok(Json(account.into()))
}

async fn get_customer(
    State(state): State<AdminState>,
    Extension(KeyName(key)): Extension<KeyName>,
    Path(id): Path<String>,
) -> Result<Json<CustomerBody>, ApiError> {
    let account = state
        .admin
        .customer(Actor::Key(&key), customer_id(&id)?)
        .await?;
    Ok(Json(account.into()))
}

async fn delete_customer(
    State(state): State<AdminState>,
    Extension(KeyName(key)): Extension<KeyName>,
    Path(id): Path<String>,
) -> Result<Json<Msg>, ApiError> {
    state
        .admin
        .delete_customer(Actor::Key(&key), customer_id(&id)?)
        .await?;
    Ok(Json(OK))
}

async fn deactivate(
    State(state): State<AdminState>,
    Extension(KeyName(key)): Extension<KeyName>,
    Path(id): Path<String>,
) -> Result<Json<Msg>, ApiError> {
    state
        .admin
        .set_active(Actor::Key(&key), customer_id(&id)?, false)
        .await?;
    Ok(Json(OK))
}

async fn activate(
    State(state): State<AdminState>,
    Extension(KeyName(key)): Extension<KeyName>,
    Path(id): Path<String>,
) -> Result<Json<Msg>, ApiError> {
    state
        .admin
        .set_active(Actor::Key(&key), customer_id(&id)?, true)
        .await?;
    Ok(Json(OK))
}

async fn list_sessions(
    State(state): State<AdminState>,
    Extension(KeyName(key)): Extension<KeyName>,
    Path(id): Path<String>,
) -> Result<Json<SessionsBody>, ApiError> {
    let sessions = state
        .admin
        .sessions(Actor::Key(&key), customer_id(&id)?)
        .await?;
    Ok(Json(SessionsBody::for_operator(sessions)))
}

async fn revoke_sessions(
    State(state): State<AdminState>,
    Extension(KeyName(key)): Extension<KeyName>,
    Path(id): Path<String>,
) -> Result<Json<Msg>, ApiError> {
    state
        .admin
        .revoke_sessions(Actor::Key(&key), customer_id(&id)?)
        .await?;
    Ok(Json(OK))
}

async fn password_reset(
    State(state): State<AdminState>,
    Extension(KeyName(key)): Extension<KeyName>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Msg>), ApiError> {
    state
        .admin
        .password_reset(Actor::Key(&key), customer_id(&id)?)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(OK)))
}

async fn mfa_reset(
    State(state): State<AdminState>,
    Extension(KeyName(key)): Extension<KeyName>,
    Path(id): Path<String>,
) -> Result<Json<Msg>, ApiError> {
    state
        .admin
        .mfa_reset(Actor::Key(&key), customer_id(&id)?)
        .await?;
    Ok(Json(OK))
}
