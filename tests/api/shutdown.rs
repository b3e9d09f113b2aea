use serde_json::json;

use crate::helpers::*;

/// Logins queue behind one hashing thread; shutdown starts while they are in flight and
/// every one of them still gets its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_finish_on_shutdown() {
    // Many logins of one customer at once: the lockout counter (which counts attempts in
    // progress) is off, so that they all reach the hashing pool.
    let mut app = spawn_app_with(&Backend::Sqlite, |s| {
        s.password.threads = 1;
        s.abuse.login_max_failures = 0;
    })
    .await;
    app.signup(&customer(60)).await;
    let login = json!({"email": "ming60@example.com", "password": "password-123"});
    let in_flight: Vec<_> = (0..6)
        .map(|_| {
            let request = app.client.post(app.url("/auth/login")).json(&login);
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    // Shutdown begins only once all six are being handled.
    let login_route = app
        .metrics
        .http_inflight
        .with_label_values(&["/api/account/auth/login"]);
    // Generous: under a full parallel test run the six may take a while to arrive.
    let inflight = poll_within(
        std::time::Duration::from_secs(30),
        async || login_route.get(),
        |n| *n == 6,
    )
    .await;
    assert_eq!(inflight, 6, "all six logins in flight");
    app.trigger_shutdown();
    for request in in_flight {
        assert_eq!(request.await.unwrap().unwrap(), 200);
    }
    let base = app.base.clone();
    app.shutdown().await.unwrap();
    // Stopped accepting.
    assert!(
        reqwest::get(format!("{base}/api/account/info/person"))
            .await
            .is_err()
    );
}

/// With the hashing queue full, login answers 503 at once instead of queueing without bound,
/// and the logins that were admitted still succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_hash_queue_answers_503_fast() {
    let app = spawn_app_with(&Backend::Sqlite, |s| {
        s.abuse.login_max_failures = 0;
        s.password.threads = 1;
        s.password.queue = 1;
    })
    .await;
    app.signup(&customer(61)).await;
    let login = json!({"email": "ming61@example.com", "password": "password-123"});
    let started = std::time::Instant::now();
    let requests: Vec<_> = (0..40)
        .map(|_| {
            let request = app.client.post(app.url("/auth/login")).json(&login);
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let body = response.text().await.unwrap();
                (status, body, started.elapsed())
            })
        })
        .collect();
    let mut refused = Vec::new();
    let mut admitted = Vec::new();
    for request in requests {
        let (status, body, at) = request.await.unwrap();
        match status {
            503 => {
                assert_eq!(body, r#"{"msg":"service unavailable"}"#);
                refused.push(at);
            }
            200 => admitted.push(at),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(!refused.is_empty(), "some logins must be refused");
    assert!(!admitted.is_empty(), "the admitted logins succeed");
    // Refusals come back while the admitted logins are still hashing.
    let slowest_admitted = admitted.iter().max().unwrap();
    assert!(
        refused.iter().all(|r| r < slowest_admitted),
        "refused {refused:?} admitted {admitted:?}"
    );
    app.shutdown().await.unwrap();
}
