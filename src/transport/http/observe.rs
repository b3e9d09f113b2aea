//! Per-request observability and the headers every response carries: a span joined to the
//! caller's trace, a request id, the Go service's HTTP metrics labelled by route pattern,
//! one log line per request, and the Go service's CORS headers.
//!
//! This runs on every request, the cached reads included, so the metric handles of each
//! route are resolved once and kept, and nothing is formatted that the log line does not
//! print.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, OnceLock},
    time::Instant,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body::Body as _;
use prometheus::{Histogram, IntGauge};
use tracing::{Instrument, field::Empty};

use super::{
    api::ROUTES,
    client::{ClientAddr, client_address},
};
use crate::{
    domain::IpNet,
    metrics::{Metrics, UNMATCHED_ROUTE},
    telemetry,
};

/// Status codes whose metric handles are kept; others are looked up per request.
const KEPT_CODES: [u16; 20] = [
    200, 201, 202, 204, 400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 429, 431, 500, 502, 503,
    504,
];
const KEPT_METHODS: [Method; 7] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::HEAD,
    Method::OPTIONS,
];

/// The handles of one route: its in-flight gauge, and its two histograms per method and
/// status, filled in on first use.
struct RouteMetrics {
    label: &'static str,
    inflight: IntGauge,
    by_outcome: Vec<OnceLock<(Histogram, Histogram)>>,
}

/// What the observing middleware needs: the HTTP metrics with their handles resolved per
/// route, and who may set `X-Forwarded-For`.
pub struct Observer {
    metrics: Metrics,
    trusted_proxies: Vec<IpNet>,
    routes: matchit::Router<usize>,
    /// One per route of `ROUTES`.
    handles: Vec<RouteMetrics>,
    unmatched: RouteMetrics,
}

impl Observer {
    pub fn new(metrics: Metrics, trusted_proxies: Vec<IpNet>) -> Self {
        let mut routes = matchit::Router::new();
        let handles_of = |label| RouteMetrics {
            label,
            inflight: metrics.http_inflight.with_label_values(&[label]),
            by_outcome: (0..KEPT_METHODS.len() * KEPT_CODES.len())
                .map(|_| OnceLock::new())
                .collect(),
        };
        let mut handles = Vec::new();
        for (i, label) in ROUTES.iter().copied().enumerate() {
            // ROUTES are fixed, distinct patterns; a clash would only lose a label.
            let _ = routes.insert(label, i);
            handles.push(handles_of(label));
        }
        let unmatched = handles_of(UNMATCHED_ROUTE);
        Self {
            metrics,
            trusted_proxies,
            routes,
            handles,
            unmatched,
        }
    }

    fn route(&self, path: &str) -> &RouteMetrics {
        self.routes
            .at(path)
            .ok()
            .and_then(|matched| self.handles.get(*matched.value))
            .unwrap_or(&self.unmatched)
    }

    fn observe(
        &self,
        route: &RouteMetrics,
        method: &Method,
        status: StatusCode,
        secs: f64,
        size: f64,
    ) {
        let slot = KEPT_METHODS
            .iter()
            .position(|m| m == method)
            .zip(KEPT_CODES.iter().position(|c| *c == status.as_u16()))
            .map(|(m, c)| m * KEPT_CODES.len() + c);
        let resolve = || {
            let labels = [route.label, method.as_str(), status.as_str()];
            (
                self.metrics.http_duration.with_label_values(&labels),
                self.metrics.http_response_size.with_label_values(&labels),
            )
        };
        match slot.and_then(|i| route.by_outcome.get(i)) {
            Some(cell) => {
                let (duration, size_histogram) = cell.get_or_init(resolve);
                duration.observe(secs);
                size_histogram.observe(size);
            }
            None => {
                let (duration, size_histogram) = resolve();
                duration.observe(secs);
                size_histogram.observe(size);
            }
        }
    }
}

/// Decrements the in-flight gauge however the request ends (a client going away included).
struct InFlight<'a>(&'a IntGauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

const CORS_HEADERS: [(HeaderName, &str); 5] = [
    (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
    (header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true"),
    (
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        "Content-Type, Content-Length, Accept-Encoding, X-CSRF-Token, Authorization, Accept, Origin, Cache-Control, X-Requested-With",
    ),
    (
        header::ACCESS_CONTROL_ALLOW_METHODS,
        "POST, DELETE, GET, PUT, PATCH, OPTIONS",
    ),
    (header::ACCESS_CONTROL_MAX_AGE, "86400"),
];

pub async fn observe(
    State(observer): State<Arc<Observer>>,
    mut request: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let route = observer.route(request.uri().path());
    let client = peer_ip(&request)
        .map(|peer| client_address(peer, request.headers(), &observer.trusted_proxies));
    if let Some(client) = client {
        request.extensions_mut().insert(ClientAddr(client));
    }
    let method = request.method().clone();
    let request_id = telemetry::RequestId::from_headers(request.headers());
    let request_id_header = request_id.header_value();
    // Created only while traces are exported; otherwise no layer wants it and it is free.
    let span = tracing::info_span!(
        "HTTP request",
        otel.name = %format_args!("{method} {}", route.label),
        otel.kind = "server",
        http.request.method = %method,
        http.route = route.label,
        http.response.status_code = Empty,
        request_id = request_id.as_str(),
    );
    let trace_id = telemetry::join_trace(&span, telemetry::extract_context(request.headers()));
    let context = telemetry::RequestContext {
        request_id,
        trace_id,
    };
    let mut response = telemetry::in_request(context, async {
        let uri = request.uri().clone();
        let client_ip = OptionalIp(client);
        let referrer = request.headers().get(header::REFERER).cloned();
        route.inflight.inc();
        let guard = InFlight(&route.inflight);
        // The Go middleware answers any OPTIONS request itself, whatever the path.
        let response = if method == Method::OPTIONS {
            StatusCode::NO_CONTENT.into_response()
        } else {
            next.run(request).instrument(span.clone()).await
        };
        drop(guard);

        let status = response.status();
        let elapsed = start.elapsed();
        let size = response.body().size_hint().exact().unwrap_or_default();
        observer.observe(route, &method, status, elapsed.as_secs_f64(), size as f64);
        span.record("http.response.status_code", status.as_u16());
        let duration_ms = (elapsed.as_secs_f64() * 100_000.0).round() / 100.0;
        // Without query and fragment: a page's URL may carry a reset token (rule 15.9).
        let referrer = referrer
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(['?', '#']).next().unwrap_or_default())
            .unwrap_or_default();
        let _entered = span.enter();
        if status.is_server_error() {
            tracing::error!(r#type = "router", client_ip = %client_ip, "duration(ms)" = duration_ms, method = method.as_str(), path = uri.path(), route = route.label, status = status.as_u16(), referrer, "request");
        } else {
            tracing::info!(r#type = "router", client_ip = %client_ip, "duration(ms)" = duration_ms, method = method.as_str(), path = uri.path(), route = route.label, status = status.as_u16(), referrer, "request");
        }
        response
    })
    .await;
    let headers = response.headers_mut();
    for (name, value) in CORS_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Some(value) = request_id_header {
        headers.insert("x-request-id", value);
    }
    response
}

/// An address printed as itself, or as nothing when unknown.
struct OptionalIp(Option<IpAddr>);

impl std::fmt::Display for OptionalIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => Ok(()),
        }
    }
}

/// The client as the socket sees it.
fn peer_ip(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_paths_share_one_label() {
        let m = Observer::new(Metrics::new("test"), Vec::new());
        assert_eq!(
            m.route("/api/account/info/person").label,
            "/api/account/info/person"
        );
        assert_eq!(m.route("/api/account/info/person/").label, UNMATCHED_ROUTE);
        assert_eq!(m.route("/random/abc").label, UNMATCHED_ROUTE);
    }
}
