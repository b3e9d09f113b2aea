//! Metrics, traces, logs and health, observed from outside as an operator would.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use saga_account::transport::grpc::pb::AuthPayload;
use serde_json::{Value, json};

use crate::helpers::*;

/// The value of the sample whose name and labels contain all of `parts`.
fn sample(text: &str, name: &str, parts: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .find(|l| parts.iter().all(|p| l.contains(p)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_traffic_and_labels_stay_bounded() {
    let app = spawn_app(&Backend::Sqlite).await;
    let (access, _) = app.signup(&customer(300)).await;
    let wrong = app
        .post(
            "/auth/login",
            &json!({"email": "ming300@example.com", "password": "wrong-pass-1"}),
        )
        .await;
    assert_eq!(wrong.status(), 401);
    let ok = app
        .post(
            "/auth/login",
            &json!({"email": "ming300@example.com", "password": "password-123"}),
        )
        .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(app.get_auth("/info/person", &access).await.status(), 200);
    for i in 0..500 {
        let path = format!("{}/random/{i}/{:x}", app.base, rand::random::<u64>());
        assert_eq!(app.client.get(path).send().await.unwrap().status(), 404);
    }
    let mut grpc = app.grpc().await;
    grpc.auth(AuthPayload {
        access_token: access.clone(),
    })
    .await
    .unwrap();
    grpc.auth(AuthPayload {
        access_token: "bad".into(),
    })
    .await
    .unwrap_err();

    let text = app.scrape().await;
    let signup = r#"handler="/api/account/auth/signup""#;
    assert_eq!(
        sample(
            &text,
            "account_http_request_duration_seconds_count",
            &[signup, r#"method="POST""#, r#"code="201""#]
        ),
        Some(1.0)
    );
    assert!(
        sample(
            &text,
            "account_http_response_size_bytes_bucket",
            &[signup, r#"le="100""#]
        )
        .is_some()
    );
    let top_bucket = ["1e+09", "1000000000"].iter().find_map(|le| {
        sample(
            &text,
            "account_http_response_size_bytes_bucket",
            &[signup, &format!(r#"le="{le}""#)],
        )
    });
    assert_eq!(
        top_bucket,
        Some(1.0),
        "the 1 GB bucket of the signup response"
    );
    assert_eq!(
        sample(&text, "account_http_requests_inflight", &[signup]),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            "account_http_request_duration_seconds_count",
            &[r#"handler="unmatched""#, r#"code="404""#]
        ),
        Some(500.0)
    );
    let handlers: BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("account_http_request_duration_seconds_count"))
        .filter_map(|l| l.split("handler=\"").nth(1)?.split('"').next())
        .collect();
    assert!(
        handlers.len() <= saga_account::transport::http::ROUTES.len() + 1,
        "{handlers:?}"
    );

    assert_eq!(
        sample(
            &text,
            "account_logins_total",
            &[r#"outcome="authentication_failed""#]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "account_logins_total", &[r#"outcome="success""#]),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "account_signups_total", &[r#"outcome="success""#]),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "account_token_verifications_total",
            &[r#"transport="http""#, r#"outcome="valid""#]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "account_token_verifications_total",
            &[r#"transport="grpc""#, r#"outcome="invalid""#]
        ),
        Some(1.0)
    );
    let auth = [
        r#"grpc_service="auth.AuthService""#,
        r#"grpc_method="Auth""#,
        r#"grpc_type="unary""#,
    ];
    assert_eq!(sample(&text, "grpc_server_started_total", &auth), Some(2.0));
    assert_eq!(
        sample(
            &text,
            "grpc_server_handled_total",
            &[auth[0], auth[1], r#"grpc_code="OK""#]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "grpc_server_handled_total",
            &[auth[0], auth[1], r#"grpc_code="Unauthenticated""#]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "grpc_server_msg_received_total", &auth),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, "grpc_server_msg_sent_total", &auth),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "grpc_server_handling_seconds_count", &auth),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            "account_password_hash_duration_seconds_count",
            &[r#"operation="verify""#]
        ),
        Some(2.0)
    );
    assert!(
        sample(
            &text,
            "account_db_query_duration_seconds_count",
            &[r#"operation="credentials""#]
        )
        .is_some()
    );
    assert!(sample(&text, "account_cache_misses_total", &[r#"tier="local""#]).is_some());
    for name in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
        "process_cpu_seconds_total",
    ] {
        assert!(sample(&text, name, &[]).is_some(), "{name}");
    }
    // Every metric has help text.
    let helps: HashMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    for name in text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
    {
        assert!(
            helps.get(name).is_some_and(|h| !h.trim().is_empty()),
            "{name} has no help"
        );
    }
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_say_what_they_check() {
    let mut app = spawn_app_with(&Backend::Sqlite, |s| {
        s.shutdown.delay = Duration::from_millis(600)
    })
    .await;
    let alive: Value = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(alive, json!({"status": "ok"}));
    let ready = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "ready", "checks": {"database": "ok", "redis": "not configured", "shutting_down": false}})
    );

    // At the start of shutdown readiness turns 503 while requests are still served.
    app.trigger_shutdown();
    let draining = poll_until(
        async || {
            app.client
                .get(format!("{}/readyz", app.base))
                .send()
                .await
                .unwrap()
        },
        |r| r.status() == 503,
    )
    .await;
    assert_eq!(draining.status(), 503);
    let body: Value = draining.json().await.unwrap();
    assert_eq!(body["checks"]["shutting_down"], true);
    app.shutdown().await.unwrap();
}

/// An OTLP/gRPC collector in the test process.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The binary exports its spans to an OTLP collector: an HTTP request carrying `traceparent`
/// and a gRPC call carrying Jaeger's `uber-trace-id` continue the callers' traces, with
/// child spans for the database query. The request's log lines carry the trace id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_continue_the_callers_and_reach_the_collector() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let dir = tempfile::tempdir().unwrap();
    let collector_url = format!("http://{collector_addr}");
    let mut service = ServiceProcess::spawn(
        dir.path(),
        &[("JWT_SECRET", SECRET), ("JAEGER_URL", &collector_url)],
    );
    let (http, grpc) = (service.http.clone(), service.grpc.clone());
    let client = reqwest::Client::new();
    let response = client
        .post(format!("http://{http}/api/account/auth/signup"))
        .json(&customer(310))
        .send()
        .await
        .unwrap();
    let (access, _) = tokens_of(response).await;

    let http_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let http_parent = "00f067aa0ba902b7";
    let response = client
        .get(format!("http://{http}/api/account/info/person"))
        .header("authorization", format!("bearer {access}"))
        .header("traceparent", format!("00-{http_trace}-{http_parent}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let grpc_trace = "a3ce929d0e0e47364bf92f3577b34da6";
    let grpc_parent = "b7ad6b7169203331";
    let mut request = tonic::Request::new(AuthPayload {
        access_token: access.clone(),
    });
    request.metadata_mut().insert(
        "uber-trace-id",
        format!("{grpc_trace}:{grpc_parent}:0:1").parse().unwrap(),
    );
    let mut grpc_client =
        saga_account::transport::grpc::pb::auth_service_client::AuthServiceClient::connect(
            format!("http://{grpc}"),
        )
        .await
        .unwrap();
    grpc_client.auth(request).await.unwrap();

    // SIGTERM flushes the batch.
    service.sigterm();
    assert_eq!(service.wait().code(), Some(0));
    let log = service.log();

    let spans = collector.0.lock().unwrap().clone();
    let in_trace = |trace: &str| {
        spans
            .iter()
            .filter(|s| hex(&s.trace_id) == trace)
            .cloned()
            .collect::<Vec<_>>()
    };
    let http_spans = in_trace(http_trace);
    let server = http_spans
        .iter()
        .find(|s| hex(&s.parent_span_id) == http_parent)
        .unwrap_or_else(|| panic!("no HTTP span under the caller's span: {http_spans:#?}"));
    assert!(
        server.name.contains("/api/account/info/person"),
        "{}",
        server.name
    );
    let db = http_spans
        .iter()
        .find(|s| s.name == "db personal_info")
        .unwrap_or_else(|| panic!("no database span: {http_spans:#?}"));
    assert_eq!(
        db.parent_span_id, server.span_id,
        "the query is a child of the request"
    );

    let grpc_spans = in_trace(grpc_trace);
    let call = grpc_spans
        .iter()
        .find(|s| hex(&s.parent_span_id) == grpc_parent)
        .unwrap_or_else(|| panic!("no gRPC span under the caller's span: {spans:#?}"));
    assert_eq!(call.name, "auth.AuthService/Auth");

    // The request's log line carries its trace id; no line carries a secret.
    assert!(
        log.iter()
            .any(|l| l.contains(http_trace) && l.contains("status=200")),
        "{log:#?}"
    );
    for secret in [SECRET, "password-123", access.as_str()] {
        assert!(
            !log.iter().any(|l| l.contains(secret)),
            "a log line contains {secret:?}"
        );
    }
}
