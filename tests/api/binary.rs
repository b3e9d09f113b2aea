//! The built binary, run as an operator runs it.

use std::process::Command;

use crate::helpers::*;

#[test]
fn help_lists_commands_and_every_setting() {
    let output = Command::new(binary()).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for word in ["serve", "migrate", "--config"] {
        assert!(help.contains(word), "{word} missing from --help");
    }
    for setting in saga_account::config::settings() {
        assert!(
            help.contains(setting.env),
            "{} missing from --help",
            setting.env
        );
    }
}

#[test]
fn invalid_setting_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(binary())
        .current_dir(dir.path())
        .env("HTTP_PORT", "eighty")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("HTTP_PORT") && stderr.contains("eighty"),
        "{stderr}"
    );
}

#[tokio::test]
async fn migrate_creates_the_schema_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let output = Command::new(binary())
        .arg("migrate")
        .current_dir(dir.path())
        .env("DB_DSN", format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM customers")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

/// Starts the binary on the embedded default, signs up through it, stops it with SIGTERM and
/// checks it exits 0 and never logged the secret, the password or a token.
#[tokio::test]
async fn serves_then_exits_zero_on_sigterm_without_logging_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let mut service = ServiceProcess::spawn(
        dir.path(),
        &[
            ("JWT_SECRET", "top-secret-value-1234"),
            ("LOG_LEVEL", "debug"),
        ],
    );
    assert!(
        dir.path().join("data/account.db").exists(),
        "SQLite file in the data directory"
    );

    let client = reqwest::Client::new();
    let response = client
        .post(service.url("/api/account/auth/signup"))
        .json(&customer(70))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let (access, _) = tokens_of(response).await;
    let bad = client
        .post(service.url("/api/account/auth/login"))
        .json(&serde_json::json!({"email": "ming70@example.com", "password": "wrong-password-9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let _ = client
        .get(service.url("/api/account/info/person"))
        .header("authorization", format!("bearer {access}x"))
        .send()
        .await
        .unwrap();

    let metrics = reqwest::get(format!("http://{}/metrics", service.metrics))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"account_signups_total{outcome="success"} 1"#),
        "{metrics}"
    );

    service.sigterm();
    let status = service.wait();
    let log = service.log().join("\n");
    assert_eq!(status.code(), Some(0), "{log}");
    for secret in [
        "top-secret-value-1234",
        "password-123",
        "wrong-password-9",
        access.as_str(),
    ] {
        assert!(!log.contains(secret), "log contains {secret:?}:\n{log}");
    }
}

/// Without `SMTP_URL` the start warns and a mail is an `.eml` file under `DATA_DIR/mail/`;
/// every operator call logs the key's name, the action and the customer id, and neither
/// the key's secret nor a mail's token ever reaches the log.
#[tokio::test]
async fn operator_calls_are_audited_and_no_key_or_token_is_logged() {
    const SECRET_PART: &str = "0123456789abcdef0123456789abcdef";
    let dir = tempfile::tempdir().unwrap();
    let port = SmtpSink::free_addr().await.port().to_string();
    let mut service = ServiceProcess::spawn(
        dir.path(),
        &[
            ("ADMIN_PORT", port.as_str()),
            ("ADMIN_API_KEYS", &format!("ops.{SECRET_PART}")),
            ("LOG_LEVEL", "debug"),
        ],
    );
    let log = service.log().join("\n");
    assert!(log.contains("SMTP_URL is not set"), "{log}");
    assert!(log.contains(&format!("admin=127.0.0.1:{port}")), "{log}");

    let client = reqwest::Client::new();
    let response = client
        .post(service.url("/api/account/auth/signup"))
        .json(&customer(71))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let admin = |path: &str, key: &str| {
        client
            .get(format!("http://127.0.0.1:{port}/admin/v1{path}"))
            .header("authorization", format!("ApiKey {key}"))
            .send()
    };
    let found: serde_json::Value = admin(
        "/customers?email=ming71@example.com",
        &format!("ops.{SECRET_PART}"),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id = found["id"].as_str().unwrap().to_owned();
    let refused = admin(&format!("/customers/{id}"), &format!("ops.{SECRET_PART}x"))
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let reset = client
        .post(format!(
            "http://127.0.0.1:{port}/admin/v1/customers/{id}/password-reset"
        ))
        .header("authorization", format!("ApiKey ops.{SECRET_PART}"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 202);
    let mail_dir = dir.path().join("data/mail");
    let eml = poll_until(
        async || {
            std::fs::read_dir(&mail_dir)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        },
        |files| !files.is_empty(),
    )
    .await;
    let mail = ReceivedMail {
        to: Vec::new(),
        raw: std::fs::read(eml.first().expect("the reset mail as a file")).unwrap(),
    };
    let token = mail.token("reset-password");

    service.sigterm();
    let status = service.wait();
    let log = service.log().join("\n");
    assert_eq!(status.code(), Some(0), "{log}");
    let audited = |action: &str| {
        log.lines().any(|l| {
            l.contains("operator call")
                && l.contains("ops")
                && l.contains(action)
                && l.contains(&id)
        })
    };
    assert!(
        audited("find_customer") && audited("password_reset"),
        "{log}"
    );
    assert!(log.contains("operator call refused"), "{log}");
    for secret in [SECRET_PART, token.as_str()] {
        assert!(!log.contains(secret), "log contains {secret:?}:\n{log}");
    }
}

/// `saga-account healthcheck`, as a container runtime runs it next to the service.
fn healthcheck(port: &str, args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(binary())
        .arg("healthcheck")
        .args(args)
        .current_dir(dir.path())
        // The listener is on every address: the probe goes to loopback.
        .envs([("HTTP_PORT", port), ("BIND_ADDRESS", "0.0.0.0")])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn healthcheck_exits_zero_only_while_the_service_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let mut service = ServiceProcess::spawn(
        dir.path(),
        &[
            ("SHUTDOWN_DELAY_SECONDS", "30"),
            ("SHUTDOWN_TIMEOUT_SECONDS", "1"),
        ],
    );
    let port = service.http.rsplit(':').next().unwrap().to_owned();
    let (ok, text) = healthcheck(&port, &[]);
    assert!(ok, "{text}");
    assert!(text.contains("/readyz") && text.contains("200"), "{text}");
    // Draining after SIGTERM: unready, still alive.
    service.sigterm();
    let (ok, text) = poll_until(async || healthcheck(&port, &[]), |(ok, _)| !ok).await;
    assert!(!ok && text.contains("/readyz answered 503"), "{text}");
    let (ok, text) = healthcheck(&port, &["--path", "/healthz"]);
    assert!(ok, "{text}");
    // Gone: nothing listens.
    service.child.kill().unwrap();
    service.wait();
    let (ok, text) = healthcheck(&port, &[]);
    assert!(!ok && text.contains("cannot reach"), "{text}");
}
