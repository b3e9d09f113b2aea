//! `GET /healthz` (the process answers) and `GET /readyz` (it can serve; see `readiness`).

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;

use super::AppState;
use crate::readiness::Readiness;

#[derive(Serialize)]
pub struct Alive {
    status: &'static str,
}

pub async fn healthz() -> Json<Alive> {
    Json(Alive { status: "ok" })
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let readiness = state.health.check().await;
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}
