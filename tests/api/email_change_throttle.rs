//! SPEC rules 15.2 and 15.4 together: with `EMAIL_CHANGE_REQUIRES_PASSWORD`, the
//! `current_password` of an email change is a password check like any other. Wrong ones are
//! counted per customer, in the same count as `PUT /info/password`, so a stolen session
//! cannot guess its way to the owner's address. (Beside `email_change.rs`, which is near
//! the line limit.)

use reqwest::Method;
use serde_json::json;

use crate::{backend_tests, helpers::*};

backend_tests!(email_change_wrong_passwords_end_in_too_many_attempts);

const PASSWORD: &str = "password-123";

/// A small `LOGIN_MAX_FAILURES`: the per-customer count uses login's limit.
const MAX_FAILURES: u32 = 3;

fn verifications(app: &TestApp) -> u64 {
    app.metrics
        .hash_duration
        .with_label_values(&["verify", "bcrypt"])
        .get_sample_count()
}

async fn email_change_wrong_passwords_end_in_too_many_attempts(backend: Backend) {
    let sink = SmtpSink::start().await;
    let smtp = with_smtp(&sink);
    let app = spawn_app_with(&backend, |s| {
        smtp(s);
        s.email_change.requires_password = true;
        s.abuse.login_max_failures = MAX_FAILURES;
    })
    .await;
    let old = email_of(408);
    let new = "b408@example.org";
    let (access, _) = app.signup(&customer(408)).await;
    let change = |password: &str| json!({"firstname": "Ming", "lastname": "Hsu", "email": new, "current_password": password});

    for _ in 0..MAX_FAILURES {
        let response = app
            .put_auth("/info/person", &access, &change("not-my-password"))
            .await;
        assert_msg(response, 401, "authentication failed").await;
    }
    // Locked: even the right password is refused, before any hashing.
    let verified = verifications(&app);
    let response = app
        .put_auth("/info/person", &access, &change(PASSWORD))
        .await;
    let retry_after = response.headers().get("retry-after").cloned();
    assert_msg(response, 429, "too many attempts").await;
    assert_eq!(retry_after.unwrap(), "60", "LOGIN_LOCKOUT_SECONDS");
    // The same count as a password change's.
    let response = app
        .call(
            Method::PUT,
            "/info/password",
            Some(&access),
            Some(&json!({"current_password": PASSWORD, "new_password": "new-password-456"})),
        )
        .await;
    assert_msg(response, 429, "too many attempts").await;
    assert_eq!(verifications(&app), verified, "no hashing while locked");

    // Nothing changed: the old address is the customer's and logs in, the new one does not,
    // and no "email changed" notice was queued.
    let person = app.get_json("/info/person", &access).await;
    assert_eq!(person["email"].as_str(), Some(old.as_str()));
    app.login(&old, PASSWORD).await;
    let response = app
        .post("/auth/login", &json!({"email": new, "password": PASSWORD}))
        .await;
    assert_msg(response, 404, "customer not found").await;
    let text = app.scrape().await;
    for counted in [
        r#"account_mail_queued_total{kind="email_changed"} 0"#,
        r#"account_login_throttled_total{limit="customer"} 2"#,
        r#"account_login_lockouts_total{limit="customer"} 1"#,
    ] {
        assert!(text.contains(counted), "{counted}: {text}");
    }
    app.shutdown().await.unwrap();
}
