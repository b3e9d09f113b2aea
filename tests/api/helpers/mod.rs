//! Starts the whole service on random ports against a fresh database and talks to it as a
//! client does; starts the built binary the same way; cuts dependencies off behind proxies.

mod app;
mod database;
mod process;
mod proxy;
mod smtp;

use std::time::Duration;

use reqwest::Response;
use serde_json::{Value, json};

pub use app::*;
pub use database::*;
pub use process::*;
pub use proxy::*;
pub use smtp::*;

pub const SECRET: &str = "93c61a11-a4f6-42fc-a995-4f1c850822bb";
/// `MFA_ENCRYPTION_KEY` of test apps: 32 bytes in base64.
pub const MFA_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

pub fn now() -> i64 {
    use saga_account::domain::clock::Clock;
    saga_account::domain::clock::SystemClock.now_secs()
}

pub async fn tokens_of(response: Response) -> (String, String) {
    let body: Value = response.json().await.expect("json body");
    let access = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let refresh = body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned();
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(2),
        "exactly the two tokens: {body}"
    );
    (access, refresh)
}

/// Asserts a status and a `{"msg": ...}` body.
pub async fn assert_msg(response: Response, status: u16, msg: &str) {
    let got = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(got, status, "body: {text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    assert_eq!(body, json!({ "msg": msg }));
}

/// Asserts a 401 with an empty body (the `/info` middleware's answer).
pub async fn assert_empty_401(response: Response) {
    assert_eq!(response.status(), 401);
    assert_eq!(response.text().await.unwrap_or_default(), "");
}

/// A login as from client address `from` (the app must trust 127.0.0.1: `TRUSTED_PROXIES`).
pub async fn login_from(app: &TestApp, email: &str, password: &str, from: &str) -> Response {
    app.client
        .post(app.url("/auth/login"))
        .header("x-forwarded-for", from)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

/// A fresh, valid signup body; `n` keeps email and phone unique.
pub fn customer(n: u32) -> Value {
    json!({
        "password": "password-123",
        "firstname": "Ming",
        "lastname": "Hsu",
        "email": format!("ming{n}@example.com"),
        "address": format!("{n} Main Street"),
        "phone_number": format!("0912{n:06}"),
    })
}

/// Runs every listed test body once per backend: always on SQLite, on MySQL and PostgreSQL
/// when configured.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = $crate::helpers::Backend::mysql() {
                        super::$name(backend).await
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = $crate::helpers::Backend::postgres() {
                        super::$name(backend).await
                    }
                }
            )*
        }
    };
}

/// Runs every listed test body on each database server: MariaDB (SQLite when no
/// `TEST_MYSQL_DSN` is set outside CI, so that a fresh checkout runs the body too) and
/// PostgreSQL (when `TEST_POSTGRES_DSN` is set).
#[macro_export]
macro_rules! server_tests {
    ($($name:ident),* $(,)?) => {
        mod on_mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = $crate::helpers::Backend::server_or_sqlite("mysql") {
                        super::$name(backend).await
                    }
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = $crate::helpers::Backend::server_or_sqlite("postgres") {
                        super::$name(backend).await
                    }
                }
            )*
        }
    };
}

/// Calls `probe` until `done` holds for its result or `within` has passed, and returns the
/// last result. The one way tests wait for something that happens "eventually" (another
/// replica, a reconnection): a condition, never a fixed sleep.
pub async fn poll_within<T>(
    within: Duration,
    mut probe: impl AsyncFnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        let result = probe().await;
        if done(&result) || std::time::Instant::now() >= deadline {
            return result;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `poll_within` five seconds.
pub async fn poll_until<T>(probe: impl AsyncFnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    poll_within(Duration::from_secs(5), probe, done).await
}

/// The email of `customer(n)`.
pub fn email_of(n: u32) -> String {
    customer(n)["email"].as_str().unwrap().to_owned()
}

/// Settings that send mail to `sink`, with links on `https://shop.example`.
pub fn with_smtp(sink: &SmtpSink) -> impl FnOnce(&mut saga_account::config::Settings) + use<> {
    let url = sink.url();
    move |s| {
        s.mail.smtp_url = Some(saga_account::service::mail::SmtpUrl::parse(&url).unwrap());
        s.mail.public_base_url = "https://shop.example".into();
    }
}
