//! A password reset lifts every lockout of its customer (SPEC sections 10 and 13, rules
//! 15.4 and 15.5): the failed logins of the email from each address, the account's ceiling
//! over all of them and the customer's failed password checks. The link reached the
//! mailbox and the password is new, so the customer logs in at once, whoever asked for the
//! reset, with the counters in memory, in Redis and in a Redis Cluster.

use reqwest::{Method, Response};
use serde_json::json;

use crate::{backend_tests, helpers::*, redis_harness::RedisTarget};

backend_tests!(
    a_reset_lifts_every_lockout_of_the_customer,
    an_operator_reset_lifts_them_too,
);

const OLD: &str = "password-123";
const NEW: &str = "new-password-456";
const RESET: &str = "reset-password";
const OPS: &str = "ops.0123456789abcdef0123456789abcdef";
/// The account ceiling here: one wrong guess from each of three addresses locks it.
const CEILING: u32 = 3;

/// An app that mails to `sink`, takes the client address from `X-Forwarded-For` sent by
/// loopback, serves the operator API, and counts in `redis` when given.
async fn spawn(backend: &Backend, sink: &SmtpSink, redis: Option<&RedisTarget>) -> TestApp {
    let smtp = with_smtp(sink);
    let operator_port = SmtpSink::free_addr().await.port();
    spawn_app_with(backend, |s| {
        smtp(s);
        s.http.trusted_proxies = vec![saga_account::domain::IpNet::parse("127.0.0.1/32").unwrap()];
        s.abuse.login_max_failures_per_account = CEILING;
        s.operator.port = operator_port;
        s.operator.api_keys = saga_account::service::operator::keys::parse(OPS).unwrap();
        if let Some(redis) = redis {
            redis.apply(s);
        }
    })
    .await
}

/// A new customer under an email of its own (Redis counters outlive the test): its email
/// and access token.
async fn signup(app: &TestApp, n: u32) -> (String, String) {
    let email = format!("locked{:x}@example.com", rand::random::<u32>());
    let mut body = customer(n);
    body["email"] = json!(email);
    let (access, _) = app.signup(&body).await;
    (email, access)
}

async fn change_password(app: &TestApp, access: &str, current: &str, new: &str) -> Response {
    let body = json!({"current_password": current, "new_password": new});
    app.call(Method::PUT, "/info/password", Some(access), Some(&body))
        .await
}

/// Locks what a reset must lift: the customer's password checks (five wrong current
/// passwords) and the account (one wrong guess from each of `CEILING` addresses, so that
/// no (email, address) pair is near its own limit). The right passwords answer 429.
async fn lock_out(app: &TestApp, email: &str, access: &str) {
    for _ in 0..5 {
        let response = change_password(app, access, "not-my-password", NEW).await;
        assert_msg(response, 401, "authentication failed").await;
    }
    for n in 0..CEILING {
        let response = login_from(app, email, "wrong-password", &format!("198.51.100.{n}")).await;
        assert_msg(response, 401, "authentication failed").await;
    }
    let response = login_from(app, email, OLD, "203.0.113.1").await;
    assert_msg(response, 429, "too many attempts").await;
    let response = change_password(app, access, OLD, NEW).await;
    assert_msg(response, 429, "too many attempts").await;
}

/// Finishes the reset with the token of the mail in `sink`.
async fn reset_by_mail(app: &TestApp, sink: &SmtpSink, email: &str) {
    let token = sink
        .wait_for_subject(email, "Reset your password", 1)
        .await
        .token(RESET);
    let response = app
        .post(
            "/auth/password/reset",
            &json!({"token": token, "new_password": NEW}),
        )
        .await;
    assert_msg(response, 200, "ok").await;
}

/// Right after the reset: the new password logs in from an address that guessed and from
/// a new one, and a password check of the customer is let through.
async fn logs_in_at_once(app: &TestApp, email: &str) {
    let response = login_from(app, email, NEW, "198.51.100.0").await;
    assert_eq!(response.status(), 200, "the account ceiling is lifted");
    let (access, _) = tokens_of(response).await;
    let response = login_from(app, email, NEW, "203.0.113.2").await;
    assert_eq!(response.status(), 200, "from a new address too");
    let response = change_password(app, &access, NEW, "third-password-789").await;
    assert_msg(response, 200, "ok").await;
}

async fn a_reset_lifts_every_lockout_of_the_customer(backend: Backend) {
    let single = RedisTarget::single();
    let mut targets = vec![None];
    if let Some((target, _)) = &single {
        targets.push(Some(target.clone()));
    }
    targets.extend(RedisTarget::cluster().map(Some));
    for redis in &targets {
        let sink = SmtpSink::start().await;
        let app = spawn(&backend, &sink, redis.as_ref()).await;
        let (email, access) = signup(&app, 700).await;
        lock_out(&app, &email, &access).await;
        let response = app
            .post("/auth/password/forgot", &json!({"email": email}))
            .await;
        assert_msg(response, 202, "ok").await;
        reset_by_mail(&app, &sink, &email).await;
        logs_in_at_once(&app, &email).await;
        app.shutdown().await.unwrap();
    }
}

/// The reset an operator sends a locked-out customer (README, "Mail quota abuse") ends in
/// the same place.
async fn an_operator_reset_lifts_them_too(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = spawn(&backend, &sink, None).await;
    let (email, access) = signup(&app, 701).await;
    lock_out(&app, &email, &access).await;
    let id = app.customer_of(&access);
    let addr = app.admin_addr.expect("operator API on");
    let response = app
        .client
        .post(format!(
            "http://{addr}/admin/v1/customers/{id}/password-reset"
        ))
        .header("authorization", format!("ApiKey {OPS}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    reset_by_mail(&app, &sink, &email).await;
    logs_in_at_once(&app, &email).await;
    app.shutdown().await.unwrap();
}
