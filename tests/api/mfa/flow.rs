//! The whole flow of SPEC section 16 on one replica, on every backend.

use std::sync::Arc;

use reqwest::Method;
use saga_account::domain::clock::ManualClock;
use serde_json::{Value, json};

use super::*;
use crate::{backend_tests, helpers::*};

backend_tests!(
    enrol_confirm_log_in_with_a_code_and_with_a_recovery_code_then_remove,
    sensitive_changes_need_a_code_once_a_factor_is_active,
    the_operator_removes_a_lost_factor,
);

const FROM: &str = "198.51.100.7";

async fn enrol_confirm_log_in_with_a_code_and_with_a_recovery_code_then_remove(backend: Backend) {
    let sink = SmtpSink::start().await;
    let clock = Arc::new(ManualClock::starting_now());
    let app = spawn_at(
        &TestDatabase::fresh(&backend).await,
        &clock,
        Some(&sink),
        |_| {},
    )
    .await;
    let (access, _) = app.signup(&customer(1)).await;
    let email = email_of(1);
    let account = app.get_json("/info/account", &access).await;
    assert_eq!(account["mfa"], json!([]));

    // Enrolment asks for the password; the secret is not active until confirmed.
    let response = app
        .call(
            Method::POST,
            "/info/mfa/totp",
            Some(&access),
            Some(&json!({"password": "wrong-password"})),
        )
        .await;
    assert_msg(response, 401, "authentication failed").await;
    let enrolment = enrol_totp(&app, &access).await;
    let secret = secret_of(&enrolment);
    assert_eq!(secret.len(), 20, "160 bits");
    let text = enrolment["secret"].as_str().unwrap();
    assert!(!text.contains('='), "base32 without padding: {text}");
    let uri = enrolment["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/saga-account:") && uri.contains(&format!("secret={text}")),
        "{uri}"
    );
    assert!(enrolment["qr_svg"].as_str().unwrap().contains("<svg"));
    let response = login_from(&app, &email, PASSWORD, FROM).await;
    assert_eq!(
        response.status(),
        200,
        "a pending secret asks nothing at login"
    );

    let wrong = format!(
        "{:06}",
        (code(&secret, &clock, 0).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    assert_msg(confirm(&app, &access, &wrong).await, 400, "invalid code").await;
    let response = confirm(&app, &access, &code(&secret, &clock, 0)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let codes: Vec<String> = serde_json::from_value(body["recovery_codes"].clone()).unwrap();
    assert_eq!(codes.len(), 10);
    let mail = sink
        .wait_for_subject(&email, "A second factor was added", 1)
        .await;
    assert!(!mail.text().contains(text), "the secret is never mailed");
    assert_eq!(
        app.get_json("/info/account", &access).await["mfa"],
        json!(["totp"])
    );
    let response = app
        .call(
            Method::POST,
            "/info/mfa/totp",
            Some(&access),
            Some(&json!({"password": PASSWORD})),
        )
        .await;
    assert_msg(response, 409, "second factor already active").await;
    // The secret is stored sealed, never as sent.
    let stored = app.database.query("SELECT secret FROM mfa_totp").await;
    assert_eq!(stored.len(), 1);
    assert!(!format!("{stored:?}").contains(text));

    // A login now needs the second step; the password alone starts no session.
    let sessions_before = app.get_json("/info/sessions", &access).await["sessions"]
        .as_array()
        .unwrap()
        .len();
    let token = login_for_token(&app, &email, FROM).await;
    assert_eq!(
        app.get_json("/info/sessions", &access).await["sessions"]
            .as_array()
            .unwrap()
            .len(),
        sessions_before
    );
    // The code the confirmation used is refused (replay), the next step's is taken.
    let replay = second_step(
        &app,
        FROM,
        json!({"mfa_token": token, "code": code(&secret, &clock, 0)}),
    )
    .await;
    assert_msg(replay, 401, "invalid code").await;
    next_step(&clock);
    let response = second_step(
        &app,
        FROM,
        json!({"mfa_token": token, "code": code(&secret, &clock, 0)}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let (access2, refresh2) = tokens_of(response).await;
    assert_eq!(amr_of(&access2), Some(vec!["pwd".into(), "otp".into()]));
    assert_eq!(amr_of(&refresh2), Some(vec!["pwd".into(), "otp".into()]));
    let reply = app
        .grpc()
        .await
        .auth(saga_account::transport::grpc::pb::AuthPayload {
            access_token: access2.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.amr, ["pwd", "otp"]);
    // A refreshed pair keeps the session's amr.
    let response = app
        .post("/auth/refresh", &json!({"refresh_token": refresh2}))
        .await;
    let (access3, _) = tokens_of(response).await;
    assert_eq!(amr_of(&access3), Some(vec!["pwd".into(), "otp".into()]));
    // The mfa_token was used up by the success.
    next_step(&clock);
    let again = second_step(
        &app,
        FROM,
        json!({"mfa_token": token, "code": code(&secret, &clock, 0)}),
    )
    .await;
    assert_msg(again, 401, "invalid token").await;
    // The same code on a new login is a replay.
    let token = login_for_token(&app, &email, FROM).await;
    let response = second_step(
        &app,
        FROM,
        json!({"mfa_token": token, "code": code(&secret, &clock, 0)}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let token = login_for_token(&app, &email, FROM).await;
    let replay = second_step(
        &app,
        FROM,
        json!({"mfa_token": token, "code": code(&secret, &clock, 0)}),
    )
    .await;
    assert_msg(replay, 401, "invalid code").await;

    // A recovery code signs in once, whatever case and dashes it is typed with.
    let typed = codes[3].to_uppercase().replace('-', " ");
    let response = second_step(
        &app,
        FROM,
        json!({"mfa_token": token, "recovery_code": typed}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let (access4, _) = tokens_of(response).await;
    assert_eq!(amr_of(&access4), Some(vec!["pwd".into(), "rec".into()]));
    let mail = sink
        .wait_for_subject(&email, "A recovery code was used", 1)
        .await;
    assert!(
        mail.text().contains("9 recovery codes are left"),
        "{}",
        mail.text()
    );
    let token = login_for_token(&app, &email, FROM).await;
    let used = second_step(
        &app,
        FROM,
        json!({"mfa_token": token, "recovery_code": codes[3]}),
    )
    .await;
    assert_msg(used, 401, "invalid code").await;

    // Removal: the password and a code.
    let remove = |body: Value| {
        let app = &app;
        let access = access.clone();
        async move {
            app.call(Method::DELETE, "/info/mfa/totp", Some(&access), Some(&body))
                .await
        }
    };
    next_step(&clock);
    assert_msg(
        remove(json!({"password": "wrong-password", "code": code(&secret, &clock, 0)})).await,
        401,
        "authentication failed",
    )
    .await;
    assert_msg(
        remove(json!({"password": PASSWORD})).await,
        400,
        "invalid code",
    )
    .await;
    assert_msg(
        remove(json!({"password": PASSWORD, "code": "000000x"})).await,
        400,
        "invalid code",
    )
    .await;
    assert_msg(
        remove(json!({"password": PASSWORD, "code": code(&secret, &clock, 0)})).await,
        200,
        "ok",
    )
    .await;
    sink.wait_for_subject(&email, "second factor was removed", 1)
        .await;
    assert_eq!(
        app.get_json("/info/account", &access).await["mfa"],
        json!([])
    );
    assert!(
        app.database
            .query("SELECT customer_id FROM mfa_recovery_codes")
            .await
            .is_empty()
    );
    // Part I again: the password alone, tokens without amr.
    let response = login_from(&app, &email, PASSWORD, FROM).await;
    assert_eq!(response.status(), 200);
    let (access5, _) = tokens_of(response).await;
    assert_eq!(amr_of(&access5), None);
    let scrape = app.scrape().await;
    for line in [
        r#"account_mfa_enrolments_total{event="confirmed"} 1"#,
        r#"account_mfa_enrolments_total{event="removed"} 1"#,
        r#"account_mfa_second_steps_total{method="totp",outcome="success"} 2"#,
        r#"account_mfa_second_steps_total{method="totp",outcome="invalid_code"} 2"#,
        r#"account_mfa_second_steps_total{method="totp",outcome="invalid_token"} 1"#,
        r#"account_mfa_second_steps_total{method="recovery_code",outcome="success"} 1"#,
        "account_mfa_recovery_codes_used_total 1",
    ] {
        assert!(scrape.contains(line), "{line} missing");
    }
}

async fn sensitive_changes_need_a_code_once_a_factor_is_active(backend: Backend) {
    let clock = Arc::new(ManualClock::starting_now());
    let app = spawn_at(&TestDatabase::fresh(&backend).await, &clock, None, |_| {}).await;
    let e = enrolled(&app, &clock, 2).await;
    let change = |body: Value| {
        let (app, access) = (&app, e.access.clone());
        async move {
            app.call(Method::PUT, "/info/password", Some(&access), Some(&body))
                .await
        }
    };
    let new = "new-password-456";
    let response = change(json!({"current_password": PASSWORD, "new_password": new})).await;
    assert_msg(response, 400, "invalid code").await;
    let response =
        change(json!({"current_password": PASSWORD, "new_password": new, "code": "123456"})).await;
    assert_msg(response, 400, "invalid code").await;
    assert_eq!(
        login_from(&app, &e.email, new, FROM).await.status(),
        401,
        "unchanged"
    );
    let response = change(json!({"current_password": PASSWORD, "new_password": new, "code": code(&e.secret, &clock, 0)})).await;
    assert_msg(response, 200, "ok").await;

    // New recovery codes void the older set.
    next_step(&clock);
    let response = app
        .call(
            Method::POST,
            "/info/mfa/recovery-codes",
            Some(&e.access),
            Some(&json!({"password": new, "recovery_code": e.recovery_codes[0]})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let fresh: Vec<String> = serde_json::from_value(body["recovery_codes"].clone()).unwrap();
    assert_eq!(fresh.len(), 10);
    let token = mfa_token(login_from(&app, &e.email, new, FROM).await).await;
    let old = second_step(
        &app,
        FROM,
        json!({"mfa_token": token, "recovery_code": e.recovery_codes[1]}),
    )
    .await;
    assert_msg(old, 401, "invalid code").await;
    let response = second_step(
        &app,
        FROM,
        json!({"mfa_token": token, "recovery_code": fresh[0]}),
    )
    .await;
    assert_eq!(response.status(), 200);

    // Account deletion needs a code too.
    let delete = |body: Value| {
        let (app, access) = (&app, e.access.clone());
        async move {
            app.call(Method::DELETE, "/info/account", Some(&access), Some(&body))
                .await
        }
    };
    assert_msg(delete(json!({"password": new})).await, 400, "invalid code").await;
    assert_msg(
        delete(json!({"password": new, "code": code(&e.secret, &clock, 0)})).await,
        200,
        "ok",
    )
    .await;
    assert!(
        app.database
            .query("SELECT customer_id FROM mfa_totp")
            .await
            .is_empty(),
        "the secret goes with the account"
    );
    assert!(
        app.database
            .query("SELECT customer_id FROM mfa_recovery_codes")
            .await
            .is_empty()
    );
}

async fn the_operator_removes_a_lost_factor(backend: Backend) {
    const OPS: &str = "ops.0123456789abcdef0123456789abcdef";
    let sink = SmtpSink::start().await;
    let clock = Arc::new(ManualClock::starting_now());
    let port = SmtpSink::free_addr().await.port();
    let app = spawn_at(
        &TestDatabase::fresh(&backend).await,
        &clock,
        Some(&sink),
        |s| {
            s.operator.port = port;
            s.operator.api_keys = saga_account::service::operator::keys::parse(OPS).unwrap();
        },
    )
    .await;
    let e = enrolled(&app, &clock, 3).await;
    let id = app.customer_of(&e.access).0;
    let admin = |path: String| {
        let client = app.client.clone();
        async move {
            client
                .delete(format!("http://127.0.0.1:{port}/admin/v1{path}"))
                .header("authorization", format!("ApiKey {OPS}"))
                .send()
                .await
                .unwrap()
        }
    };
    assert_msg(
        admin("/customers/999/mfa".into()).await,
        404,
        "customer not found",
    )
    .await;
    assert_msg(admin(format!("/customers/{id}/mfa")).await, 200, "ok").await;
    sink.wait_for_subject(&e.email, "second factor was removed", 1)
        .await;
    let response = login_from(&app, &e.email, PASSWORD, FROM).await;
    assert_eq!(response.status(), 200, "the password alone signs in again");
    assert!(
        app.scrape()
            .await
            .contains(r#"account_admin_calls_total{action="mfa_reset",key="ops"}"#)
    );
    // The same from the command line.
    let e = enrolled(&app, &clock, 4).await;
    let id = app.customer_of(&e.access).0;
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(binary())
        .args(["customer", "mfa-reset", &id.to_string()])
        .current_dir(dir.path())
        .env("DB_DSN", &app.database.dsn)
        .env_remove("RUST_LOG")
        .output()
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(out.contains("second factor removed"), "{out}");
    assert_eq!(
        login_from(&app, &e.email, PASSWORD, FROM).await.status(),
        200
    );
    sink.wait_for_subject(&e.email, "second factor was removed", 1)
        .await;
}
