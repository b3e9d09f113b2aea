//! SPEC section 16, from outside: TOTP enrolment, the second step of a login, recovery
//! codes, step-up, the operator's reset, on every backend and across replicas.

mod flow;
mod interop;
mod limits;
mod replicas;

use std::{sync::Arc, time::Duration};

use reqwest::{Method, Response};
use saga_account::{
    domain::clock::{Clock, ManualClock},
    service::mfa::totp,
};
use serde_json::{Value, json};

use crate::helpers::*;

pub const PASSWORD: &str = "password-123";

/// A customer with TOTP confirmed.
pub struct Enrolled {
    pub email: String,
    pub access: String,
    pub secret: Vec<u8>,
    pub recovery_codes: Vec<String>,
}

/// The code of the step `clock` is in, `offset` steps away.
pub fn code(secret: &[u8], clock: &ManualClock, offset: i64) -> String {
    let now = u64::try_from(clock.now_secs()).unwrap();
    totp::code_at(secret, totp::step_of(now) + offset)
}

/// Moves to the next step, so that a new code is due (one once accepted is refused).
pub fn next_step(clock: &ManualClock) {
    clock.advance(Duration::from_secs(totp::STEP_SECONDS));
}

pub fn secret_of(enrolment: &Value) -> Vec<u8> {
    let text = enrolment["secret"].as_str().unwrap();
    totp_rs::Secret::Encoded(text.to_owned())
        .to_bytes()
        .unwrap()
}

pub async fn enrol_totp(app: &TestApp, access: &str) -> Value {
    let response = app
        .call(
            Method::POST,
            "/info/mfa/totp",
            Some(access),
            Some(&json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

pub async fn confirm(app: &TestApp, access: &str, code: &str) -> Response {
    app.call(
        Method::POST,
        "/info/mfa/totp/confirm",
        Some(access),
        Some(&json!({"code": code})),
    )
    .await
}

/// Signs up customer `n` (under an email of its own) and enrols and confirms TOTP.
pub async fn enrolled(app: &TestApp, clock: &ManualClock, n: u32) -> Enrolled {
    let email = format!("mfa{n}-{:x}@example.com", rand::random::<u32>());
    let mut body = customer(n);
    body["email"] = json!(email);
    let (access, _) = app.signup(&body).await;
    let enrolment = enrol_totp(app, &access).await;
    let secret = secret_of(&enrolment);
    let response = confirm(app, &access, &code(&secret, clock, 0)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let recovery_codes = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    next_step(clock);
    Enrolled {
        email,
        access,
        secret,
        recovery_codes,
    }
}

/// A right password of a customer with a second factor: the `mfa_token`.
pub async fn mfa_token(response: Response) -> String {
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["msg"], "second factor required", "{body}");
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]), "{body}");
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none());
    body["mfa_token"].as_str().unwrap().to_owned()
}

pub async fn login_for_token(app: &TestApp, email: &str, from: &str) -> String {
    mfa_token(login_from(app, email, PASSWORD, from).await).await
}

pub async fn second_step(app: &TestApp, from: &str, body: Value) -> Response {
    app.client
        .post(app.url("/auth/mfa"))
        .header("x-forwarded-for", from)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// An app on `database` at `clock`'s time that trusts loopback as a proxy (so tests pick
/// the client address) and mails to `sink` when given.
pub async fn spawn_at(
    database: &Arc<TestDatabase>,
    clock: &Arc<ManualClock>,
    sink: Option<&SmtpSink>,
    configure: impl FnOnce(&mut saga_account::config::Settings),
) -> TestApp {
    let smtp = sink.map(with_smtp);
    spawn_app_at_time(database, clock.clone(), |s| {
        s.http.trusted_proxies = vec![saga_account::domain::IpNet::parse("127.0.0.1/32").unwrap()];
        if let Some(smtp) = smtp {
            smtp(s);
        }
        configure(s);
    })
    .await
}

/// The `amr` claim of a token, `None` when it has none.
pub fn amr_of(access: &str) -> Option<Vec<String>> {
    use base64::Engine;
    let payload = access.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let claims: Value = serde_json::from_slice(&bytes).unwrap();
    claims.get("amr").map(|a| {
        a.as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_owned())
            .collect()
    })
}
