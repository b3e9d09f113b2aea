//! The built binary, run as an operator runs it.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use crate::helpers::*;

#[test]
fn help_lists_commands_and_every_setting() {
    let output = Command::new(binary()).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for word in ["serve", "migrate", "--config"] {
        assert!(help.contains(word), "{word} missing from --help");
    }
    for setting in saga_account::config::SETTINGS {
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
    let mut child = Command::new(binary())
        .current_dir(dir.path())
        .env("HTTP_PORT", "0")
        .env("GRPC_PORT", "0")
        .env("PROM_PORT", "0")
        .env("BIND_ADDRESS", "127.0.0.1")
        .env("JWT_SECRET", "top-secret-value-1234")
        .env("LOG_LEVEL", "debug")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut log = String::new();
    let http = loop {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the service starts and logs its ports");
        log.push_str(&line);
        log.push('\n');
        if line.contains("listening") {
            let start = line.find("http=").expect("http address logged") + 5;
            break line[start..]
                .split_whitespace()
                .next()
                .unwrap()
                .trim_matches('"')
                .to_owned();
        }
    };
    assert!(
        dir.path().join("data/account.db").exists(),
        "SQLite file in the data directory"
    );

    let client = reqwest::Client::new();
    let body = customer(70);
    let response = client
        .post(format!("http://{http}/api/account/auth/signup"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let (access, _) = tokens_of(response).await;
    let bad = client
        .post(format!("http://{http}/api/account/auth/login"))
        .json(&serde_json::json!({"email": "ming70@example.com", "password": "wrong-password-9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let _ = client
        .get(format!("http://{http}/api/account/info/person"))
        .header("authorization", format!("bearer {access}x"))
        .send()
        .await
        .unwrap();

    sigterm(&child);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    log.extend(lines_rx.try_iter().map(|l| l + "\n"));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    log.push_str(&stderr);
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
