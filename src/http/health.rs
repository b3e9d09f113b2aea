//! `GET /healthz` (the process answers) and `GET /readyz` (it can serve: the database
//! answers, it is not shutting down; Redis, when configured, is reported and only degrades).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;

use super::AppState;
use crate::{cache::CachedStore, store::CustomerStore};

/// What readiness is made of; shared with the gRPC health service.
#[derive(Clone)]
pub struct Health {
    cache: Arc<CachedStore>,
    shutting_down: Arc<AtomicBool>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Readiness {
    pub status: &'static str,
    pub checks: Checks,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Checks {
    pub database: &'static str,
    pub redis: &'static str,
    pub shutting_down: bool,
}

impl Health {
    pub fn new(cache: Arc<CachedStore>) -> Self {
        Self {
            cache,
            shutting_down: Arc::new(AtomicBool::new(false)),
        }
    }

    /// From now on, readiness says no, so that load balancers drain this replica.
    pub fn start_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    pub async fn readiness(&self) -> Readiness {
        let database = match tokio::time::timeout(Duration::from_secs(2), self.cache.ping()).await {
            Ok(Ok(())) => "ok",
            _ => "unreachable",
        };
        let redis = match self.cache.redis() {
            None => "not configured",
            Some(r) if r.is_reachable() && r.is_coherent() => "ok",
            Some(_) => "degraded",
        };
        let shutting_down = self.shutting_down.load(Ordering::Acquire);
        let ready = database == "ok" && !shutting_down;
        Readiness {
            status: if ready { "ready" } else { "unready" },
            checks: Checks {
                database,
                redis,
                shutting_down,
            },
        }
    }
}

#[derive(Serialize)]
pub struct Alive {
    status: &'static str,
}

pub async fn healthz() -> Json<Alive> {
    Json(Alive { status: "ok" })
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let readiness = state.health.readiness().await;
    let status = if readiness.status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}
