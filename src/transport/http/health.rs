//! `GET /healthz` (the process answers) and `GET /readyz` (it can serve; see `readiness`).

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::state::AppState;
use crate::service::readiness::Readiness;

/// The routes, each with its OpenAPI path.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

#[derive(Serialize, ToSchema)]
pub struct Alive {
    #[schema(value_type = String)]
    status: &'static str,
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "probes",
    summary = "The process answers",
    responses(
        (status = 200, description = "`{\"status\":\"ok\"}`", body = Alive)
    ),
)]
pub async fn healthz() -> Json<Alive> {
    Json(Alive { status: "ok" })
}

// `Readiness` serialises itself in the service; these describe it.
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

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "probes",
    summary = "The replica can serve",
    responses(
        (status = 200, description = "Ready", body = ReadinessDoc),
        (status = 503, description = "Unready: the database does not answer, or shutdown has begun", body = ReadinessDoc)
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let readiness = state.health.check().await;
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}
