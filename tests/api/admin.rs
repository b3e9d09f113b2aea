//! The operator API (SPEC section 14): off by default, every route with a good, a wrong
//! and a missing key, typed errors, the audit counters; and the CLI through the same code.

use std::time::{Duration, Instant};

use reqwest::{Method, Response};
use serde_json::{Value, json};
use tokio::{io::AsyncWriteExt, net::TcpStream};

use crate::{
    backend_tests,
    helpers::*,
    hygiene::{closed_within, read_response},
};

backend_tests!(every_operator_route_with_good_wrong_and_missing_keys);

const OPS: &str = "ops.0123456789abcdef0123456789abcdef";
const NEXT: &str = "next.fedcba9876543210fedcba9876543210";

async fn admin(app: &TestApp, method: Method, path: &str, key: Option<&str>) -> Response {
    let addr = app.admin_addr.expect("operator API on");
    let mut request = app
        .client
        .request(method, format!("http://{addr}/admin/v1{path}"));
    if let Some(key) = key {
        request = request.header("authorization", format!("ApiKey {key}"));
    }
    request.send().await.expect("request")
}

#[tokio::test]
async fn the_operator_api_is_off_by_default() {
    let app = spawn_app(&Backend::Sqlite).await;
    assert!(app.admin_addr.is_none());
}

/// The operator port is served by the same accept loop as the API (SPEC section 12): 431
/// for an oversized head, a silent or slow client cut off at the head timeout, and a
/// kept-alive connection that does not hold up shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_port_has_the_http_hygiene_of_the_api() {
    let port = SmtpSink::free_addr().await.port();
    let app = spawn_app_with(&Backend::Sqlite, |s| {
        s.operator.port = port;
        s.operator.api_keys = saga_account::service::operator::keys::parse(OPS).unwrap();
        s.http.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let addr = app.admin_addr.unwrap();
    let request = |filler: usize| {
        format!(
            "GET /admin/v1/customers/1 HTTP/1.1\r\nHost: t\r\nAuthorization: ApiKey {OPS}\r\nX-Filler: {}\r\n\r\n",
            "a".repeat(filler)
        )
    };

    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(request(20 * 1024).as_bytes())
        .await
        .unwrap();
    assert_eq!(read_response(&mut stream).await.unwrap().status, 431);
    // Under the limit, the call is made; the connection stays open for the next one.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(request(12 * 1024).as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut kept).await.unwrap().status, 404);
    kept.write_all(request(0).as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut kept).await.unwrap().status, 404);

    // Nothing sent, or half a head: closed at the head timeout, unanswered.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /admin/v1/customers/1 HTTP/1.1\r\nHost:")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await);
    assert!(closed_within(&mut slow, Duration::from_secs(5)).await);
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );

    // The idle kept-alive connection is closed by shutdown, which does not wait for it.
    let started = Instant::now();
    app.shutdown().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(closed_within(&mut kept, Duration::from_secs(1)).await);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the port is closed"
    );
}

async fn every_operator_route_with_good_wrong_and_missing_keys(backend: Backend) {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let port = SmtpSink::free_addr().await.port();
    let app = spawn_app_with(&backend, |s| {
        s.operator.port = port;
        s.operator.api_keys =
            saga_account::service::operator::keys::parse(&format!("{OPS},{NEXT}")).unwrap();
        s.mail.smtp_url = saga_account::service::mail::SmtpUrl::parse(&url);
    })
    .await;
    assert_eq!(
        app.admin_addr.unwrap().ip().to_string(),
        "127.0.0.1",
        "loopback by default"
    );
    let body = customer(600);
    let email = body["email"].as_str().unwrap().to_owned();
    let (access, _) = app.signup(&body).await;
    let id = app.customer_of(&access).0;

    let routes: Vec<(Method, String)> = vec![
        (Method::GET, format!("/customers?email={email}")),
        (Method::GET, format!("/customers/{id}")),
        (Method::GET, format!("/customers/{id}/sessions")),
        (Method::POST, format!("/customers/{id}/password-reset")),
        (Method::DELETE, format!("/customers/{id}/sessions")),
        (Method::POST, format!("/customers/{id}/deactivate")),
        (Method::POST, format!("/customers/{id}/activate")),
        (Method::DELETE, format!("/customers/{id}")),
    ];
    let wrong_keys = [
        None,
        Some("ops.0123456789abcdef0123456789abcdeX"),
        Some("ops"),
        Some("unknown.0123456789abcdef0123456789abcdef"),
    ];
    for (method, path) in &routes {
        for key in wrong_keys {
            let response = admin(&app, method.clone(), path, key).await;
            assert_eq!(response.status(), 401, "{method} {path} with {key:?}");
            assert_eq!(response.text().await.unwrap(), "", "nothing else said");
        }
        // A bearer token of a customer is no key either.
        let response = app
            .client
            .request(
                method.clone(),
                format!("http://{}/admin/v1{path}", app.admin_addr.unwrap()),
            )
            .header("authorization", format!("bearer {access}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    // Nothing changed.
    assert_eq!(app.get_auth("/info/person", &access).await.status(), 200);
    assert!(sink.mails().await.is_empty());

    // Good keys, both of them (rotation).
    let shown: Value = admin(
        &app,
        Method::GET,
        &format!("/customers?email={email}"),
        Some(OPS),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(shown["id"], id.to_string());
    assert_eq!(shown["email"], email.as_str());
    assert_eq!(shown["firstname"], "Ming");
    assert_eq!(shown["lastname"], "Hsu");
    assert_eq!(shown["active"], true);
    assert_eq!(shown["email_verified"], false);
    assert!(shown["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(shown.as_object().unwrap().len(), 7, "{shown}");
    let by_id: Value = admin(&app, Method::GET, &format!("/customers/{id}"), Some(NEXT))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_id, shown);

    let sessions: Value = admin(
        &app,
        Method::GET,
        &format!("/customers/{id}/sessions"),
        Some(OPS),
    )
    .await
    .json()
    .await
    .unwrap();
    let listed = sessions["sessions"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].get("current").is_none(), "{}", listed[0]);
    assert_eq!(listed[0].as_object().unwrap().len(), 6);

    // The reset mail goes to the customer; the operator sees no token.
    let response = admin(
        &app,
        Method::POST,
        &format!("/customers/{id}/password-reset"),
        Some(OPS),
    )
    .await;
    assert_eq!(response.status(), 202);
    let text = response.text().await.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"msg": "ok"})
    );
    let mail = sink.wait_for(&email, 1).await;
    assert!(!text.contains(&mail[0].token("reset-password")));

    assert_msg(
        admin(
            &app,
            Method::DELETE,
            &format!("/customers/{id}/sessions"),
            Some(OPS),
        )
        .await,
        200,
        "ok",
    )
    .await;
    assert_msg(
        app.get_auth("/info/person", &access).await,
        401,
        "token revoked",
    )
    .await;

    let (access, _) = app.login(&email, "password-123").await;
    assert_msg(
        admin(
            &app,
            Method::POST,
            &format!("/customers/{id}/deactivate"),
            Some(OPS),
        )
        .await,
        200,
        "ok",
    )
    .await;
    assert_msg(
        app.get_auth("/info/person", &access).await,
        401,
        "token revoked",
    )
    .await;
    assert_msg(
        app.post(
            "/auth/login",
            &json!({"email": email, "password": "password-123"}),
        )
        .await,
        401,
        "customer inactive",
    )
    .await;
    assert_msg(
        admin(
            &app,
            Method::POST,
            &format!("/customers/{id}/activate"),
            Some(OPS),
        )
        .await,
        200,
        "ok",
    )
    .await;
    app.login(&email, "password-123").await;

    assert_msg(
        admin(&app, Method::DELETE, &format!("/customers/{id}"), Some(OPS)).await,
        200,
        "ok",
    )
    .await;
    // Unknown customers: 404 on every route; malformed input: 400.
    for (method, path) in &routes {
        assert_msg(
            admin(&app, method.clone(), path, Some(OPS)).await,
            404,
            "customer not found",
        )
        .await;
    }
    assert_msg(
        admin(&app, Method::GET, "/customers/abc", Some(OPS)).await,
        400,
        "invalid parameter",
    )
    .await;
    assert_msg(
        admin(&app, Method::GET, "/customers?email=nope", Some(OPS)).await,
        400,
        "invalid parameter",
    )
    .await;
    assert_msg(
        admin(&app, Method::GET, "/customers", Some(OPS)).await,
        400,
        "invalid parameter",
    )
    .await;
    assert_msg(
        admin(&app, Method::GET, "/nothing", Some(OPS)).await,
        404,
        "not found",
    )
    .await;
    // The signup can happen again: the email is free.
    app.signup(&body).await;

    let scrape = app.scrape().await;
    assert!(
        scrape.contains("account_admin_calls_total{action=\"get_customer\",key=\"next\"} 1"),
        "{scrape}"
    );
    assert!(scrape.contains("account_admin_calls_total{action=\"password_reset\",key=\"ops\"} 2"));
    assert!(scrape.contains("account_admin_calls_total{action=\"list_sessions\",key=\"cli\"} 0"));
    assert!(scrape.contains(&format!(
        "account_admin_rejected_total {}",
        routes.len() * 5
    )));
}

/// `saga-account customer …` on the database of a running replica: the same service code
/// (the audit names the key `cli`); a reset queued by the CLI is sent by the replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_commands_go_through_the_same_code() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(&Backend::Sqlite, |s| {
        s.mail.smtp_url = saga_account::service::mail::SmtpUrl::parse(&url);
    })
    .await;
    let body = customer(601);
    let email = body["email"].as_str().unwrap().to_owned();
    let (access, _) = app.signup(&body).await;
    let id = app.customer_of(&access).0.to_string();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: Vec<String>| {
        let dsn = app.database.dsn.clone();
        let dir = dir.path().to_path_buf();
        async move {
            let output = tokio::process::Command::new(binary())
                .arg("customer")
                .args(args)
                .current_dir(dir)
                .env("DB_DSN", dsn)
                .env_remove("RUST_LOG")
                .output()
                .await
                .unwrap();
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        }
    };
    let (ok, out, err) = run(vec!["show".into(), id.clone()]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains(&email) && out.contains("email_verified=false"),
        "{out}"
    );
    let (ok, out, _) = run(vec!["find".into(), email.clone()]).await;
    assert!(ok && out.contains(&format!("customer {id}")), "{out}");
    let (ok, out, err) = run(vec!["password-reset".into(), id.clone()]).await;
    assert!(ok, "{err}");
    assert!(out.contains("queued"), "{out}");
    let mail = sink.wait_for(&email, 1).await;
    assert!(!out.contains(&mail[0].token("reset-password")));
    let logged = format!("{out}{err}");
    assert!(
        logged.contains("operator call")
            && logged.contains("cli")
            && logged.contains("password_reset"),
        "an audit line: {logged}"
    );
    let (ok, out, _) = run(vec!["revoke-sessions".into(), id.clone()]).await;
    assert!(ok && out.contains("1 sessions revoked"), "{out}");
    let (ok, _, err) = run(vec!["show".into(), "12345".into()]).await;
    assert!(!ok && err.contains("customer not found"), "{err}");
}
