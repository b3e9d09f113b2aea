//! `GET /healthz` (the process answers) and `GET /readyz` (it can serve; see `readiness`).

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;

use super::AppState;
use crate::service::readiness::Readiness;

#[derive(Serialize, utoipa::ToSchema)]
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

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "probes",
    summary = "The replica can serve",
    responses(
        (status = 200, description = "Ready", body = crate::transport::http::openapi::ReadinessDoc),
        (status = 503, description = "Unready: the database does not answer, or shutdown has begun", body = crate::transport::http::openapi::ReadinessDoc)
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
