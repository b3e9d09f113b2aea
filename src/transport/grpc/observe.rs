//! A tower layer around the gRPC server: a span per call joined to the caller's trace
//! (`traceparent` or `uber-trace-id` metadata), and the go-grpc-prometheus server metrics.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::Instant,
};

use prometheus::{Histogram, IntCounter};

use tower::{Layer, Service};
use tracing::{Instrument, field::Empty};

use crate::{metrics::Metrics, telemetry};

/// The metric handles of one method, resolved once for the methods this server has.
struct MethodMetrics {
    kind: &'static str,
    service: String,
    method: String,
    started: IntCounter,
    received: IntCounter,
    sent: IntCounter,
    handling: Histogram,
    /// `grpc_server_handled_total` by code, resolved on first use.
    handled: [OnceLock<IntCounter>; 17],
}

impl MethodMetrics {
    fn new(metrics: &Metrics, path: &str) -> Self {
        let path = path.trim_start_matches('/');
        let (service, method) = path.split_once('/').unwrap_or((path, ""));
        let kind = grpc_type(service, method);
        let labels = [kind, service, method];
        Self {
            kind,
            started: metrics.grpc_started.with_label_values(&labels),
            received: metrics.grpc_msg_received.with_label_values(&labels),
            sent: metrics.grpc_msg_sent.with_label_values(&labels),
            handling: metrics.grpc_handling_seconds.with_label_values(&labels),
            handled: std::array::from_fn(|_| OnceLock::new()),
            service: service.to_owned(),
            method: method.to_owned(),
        }
    }

    fn handled(&self, metrics: &Metrics, code: i32) -> IntCounter {
        let resolve = || {
            metrics.grpc_handled.with_label_values(&[
                self.kind,
                &self.service,
                &self.method,
                code_name(code),
            ])
        };
        match usize::try_from(code).ok().and_then(|i| self.handled.get(i)) {
            Some(cell) => cell.get_or_init(resolve).clone(),
            None => resolve(),
        }
    }
}

/// The methods this server has (`Auth`, health, reflection); others are resolved per call.
const KNOWN_METHODS: &[&str] = &[
    "/auth.AuthService/Auth",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

#[derive(Clone)]
pub struct ObserveLayer {
    metrics: Metrics,
    methods: Arc<HashMap<&'static str, Arc<MethodMetrics>>>,
}

impl ObserveLayer {
    pub fn new(metrics: Metrics) -> Self {
        // Every code of every method of ours is a series from the start, as
        // go-grpc-prometheus registers them.
        let methods = KNOWN_METHODS
            .iter()
            .map(|path| {
                let method = MethodMetrics::new(&metrics, path);
                for code in 0..17 {
                    method.handled(&metrics, code);
                }
                (*path, Arc::new(method))
            })
            .collect();
        Self {
            metrics,
            methods: Arc::new(methods),
        }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    layer: ObserveLayer,
}

/// go-grpc-prometheus's `grpc_type` of the methods this server has.
fn grpc_type(service: &str, method: &str) -> &'static str {
    match (service, method) {
        ("grpc.health.v1.Health", "Watch") => "server_stream",
        ("grpc.reflection.v1.ServerReflection" | "grpc.reflection.v1alpha.ServerReflection", _) => {
            "bidi_stream"
        }
        _ => "unary",
    }
}

/// Go's `codes.Code.String()`, which the metric labels use.
fn code_name(code: i32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("Unknown")
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Observe<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        // The clone that was driven to readiness is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let metrics = self.layer.metrics.clone();
        let path = request.uri().path();
        let method = match self.layer.methods.get(path) {
            Some(known) => known.clone(),
            None => Arc::new(MethodMetrics::new(&metrics, path)),
        };
        method.started.inc();
        if method.kind == "unary" {
            method.received.inc();
        }
        let request_id = telemetry::RequestId::from_headers(request.headers());
        let span = tracing::info_span!(
            "gRPC call",
            otel.name = %format_args!("{}/{}", method.service, method.method),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %method.service,
            rpc.method = %method.method,
            rpc.grpc.status_code = Empty,
            request_id = request_id.as_str(),
        );
        let trace_id = telemetry::join_trace(&span, telemetry::extract_context(request.headers()));
        let context = telemetry::RequestContext {
            request_id,
            trace_id,
        };
        let start = Instant::now();
        let call = async move {
            let result = inner.call(request).await;
            // A failed call is a trailers-only response carrying `grpc-status`; a
            // successful unary call sends its status in the trailers, after the body.
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                Err(_) => 2,
            };
            method.handling.observe(start.elapsed().as_secs_f64());
            method.handled(&metrics, code).inc();
            if code == 0 && method.kind == "unary" {
                method.sent.inc();
            }
            tracing::Span::current().record("rpc.grpc.status_code", code);
            result
        };
        Box::pin(telemetry::in_request(context, call.instrument(span)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names_are_go_names() {
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(1), "Canceled");
        assert_eq!(code_name(16), "Unauthenticated");
        assert_eq!(code_name(99), "Unknown");
    }
}
