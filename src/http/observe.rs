//! Per-request observability: a span joined to the caller's trace, a request id, the
//! Go service's HTTP metrics labelled by route pattern, and one log line per request.

use std::{net::SocketAddr, time::Instant};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::Response,
};
use http_body::Body as _;
use tracing::{Instrument, field::Empty};

use crate::{
    metrics::{Metrics, UNMATCHED_ROUTE},
    telemetry,
};

/// Every route the API serves; anything else is counted as `unmatched`, so random paths
/// cannot grow the label set.
pub const ROUTES: &[&str] = &[
    "/api/account/auth/signup",
    "/api/account/auth/login",
    "/api/account/auth/refresh",
    "/api/account/info/person",
    "/api/account/info/shipping",
    "/healthz",
    "/readyz",
];

fn route_of(path: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|r| **r == path)
        .copied()
        .unwrap_or(UNMATCHED_ROUTE)
}

/// Decrements the in-flight gauge however the request ends (a client going away included).
struct InFlight(prometheus::IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

pub async fn observe(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = route_of(request.uri().path());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let request_id = telemetry::request_id(request.headers());
    let client_ip = client_ip(&request);
    let referrer = request
        .headers()
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let span = tracing::info_span!(
        "HTTP request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = route,
        http.response.status_code = Empty,
        request_id = %request_id,
        trace_id = Empty,
    );
    let trace_id = telemetry::join_trace(&span, telemetry::extract_context(request.headers()));
    span.record("trace_id", trace_id.as_str());

    let inflight = metrics.http_inflight.with_label_values(&[route]);
    inflight.inc();
    let guard = InFlight(inflight);
    let mut response = next.run(request).instrument(span.clone()).await;
    drop(guard);

    let status = response.status();
    let code = status.as_str();
    let elapsed = start.elapsed();
    metrics
        .http_duration
        .with_label_values(&[route, method.as_str(), code])
        .observe(elapsed.as_secs_f64());
    let size = response.body().size_hint().exact().unwrap_or_default();
    metrics
        .http_response_size
        .with_label_values(&[route, method.as_str(), code])
        .observe(size as f64);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    span.record("http.response.status_code", status.as_u16());
    let duration_ms = (elapsed.as_secs_f64() * 100_000.0).round() / 100.0;
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::error!(r#type = "router", client_ip, "duration(ms)" = duration_ms, method = %method, path, route, status = status.as_u16(), referrer, "request");
        } else {
            tracing::info!(r#type = "router", client_ip, "duration(ms)" = duration_ms, method = %method, path, route, status = status.as_u16(), referrer, "request");
        }
    });
    response
}

/// The end client: `X-Forwarded-For` (first entry), `X-Real-IP`, else the socket peer.
fn client_ip(request: &Request) -> String {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or_default().trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    header("x-forwarded-for")
        .or_else(|| header("x-real-ip"))
        .or_else(|| {
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip().to_string())
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_paths_share_one_label() {
        assert_eq!(
            route_of("/api/account/info/person"),
            "/api/account/info/person"
        );
        assert_eq!(route_of("/api/account/info/person/"), UNMATCHED_ROUTE);
        assert_eq!(route_of("/random/abc"), UNMATCHED_ROUTE);
    }
}
