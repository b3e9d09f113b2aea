//! The limits of the second step (SPEC sections 16, 10 and 15.4): one step early or late,
//! five wrong codes per `mfa_token`, its address and lifetime, wrong codes as failed
//! logins; a database without a key; callers built from the old proto.

use std::{sync::Arc, time::Duration};

use saga_account::domain::clock::ManualClock;
use serde_json::json;

use super::*;
use crate::{backend_tests, helpers::*};

backend_tests!(
    a_code_one_step_early_or_late_is_taken_two_are_not,
    an_mfa_token_is_bound_used_up_and_short_lived,
    wrong_codes_count_as_failed_logins,
);

const FROM: &str = "198.51.100.8";

async fn a_code_one_step_early_or_late_is_taken_two_are_not(backend: Backend) {
    let clock = Arc::new(ManualClock::starting_now());
    let app = spawn_at(&TestDatabase::fresh(&backend).await, &clock, None, |_| {}).await;
    let e = enrolled(&app, &clock, 10).await;
    for (offset, taken) in [(-2, false), (2, false), (-1, true)] {
        next_step(&clock);
        next_step(&clock);
        let token = login_for_token(&app, &e.email, FROM).await;
        let response = second_step(
            &app,
            FROM,
            json!({"mfa_token": token, "code": code(&e.secret, &clock, offset)}),
        )
        .await;
        assert_eq!(
            response.status() == 200,
            taken,
            "offset {offset}: {}",
            response.text().await.unwrap()
        );
    }
    // A phone a step ahead: its code is taken, and then that step's code is used up.
    next_step(&clock);
    next_step(&clock);
    let token = login_for_token(&app, &e.email, FROM).await;
    let ahead = code(&e.secret, &clock, 1);
    assert_eq!(
        second_step(&app, FROM, json!({"mfa_token": token, "code": ahead}))
            .await
            .status(),
        200
    );
    next_step(&clock);
    let token = login_for_token(&app, &e.email, FROM).await;
    let response = second_step(
        &app,
        FROM,
        json!({"mfa_token": token, "code": code(&e.secret, &clock, 0)}),
    )
    .await;
    assert_msg(response, 401, "invalid code").await;
}

async fn an_mfa_token_is_bound_used_up_and_short_lived(backend: Backend) {
    let clock = Arc::new(ManualClock::starting_now());
    let app = spawn_at(&TestDatabase::fresh(&backend).await, &clock, None, |s| {
        s.abuse.login_max_failures = 50;
        // The access token outlives the wait for the mfa_token's end.
        s.session.access_ttl_secs = 3600;
    })
    .await;
    let e = enrolled(&app, &clock, 11).await;
    // Five wrong codes use it up: the right one is refused after them.
    let token = login_for_token(&app, &e.email, FROM).await;
    for _ in 0..5 {
        let response = second_step(&app, FROM, json!({"mfa_token": token, "code": "000000"})).await;
        assert_msg(response, 401, "invalid code").await;
    }
    let right = code(&e.secret, &clock, 0);
    let response = second_step(&app, FROM, json!({"mfa_token": token, "code": right})).await;
    assert_msg(response, 401, "invalid token").await;
    // Bound to the address it was issued to.
    let token = login_for_token(&app, &e.email, FROM).await;
    let response = second_step(
        &app,
        "203.0.113.9",
        json!({"mfa_token": token, "code": right}),
    )
    .await;
    assert_msg(response, 401, "invalid token").await;
    // Lives MFA_TOKEN_SECONDS (300).
    let token = login_for_token(&app, &e.email, FROM).await;
    clock.advance(Duration::from_secs(301));
    let right = code(&e.secret, &clock, 0);
    let response = second_step(&app, FROM, json!({"mfa_token": token, "code": right})).await;
    assert_msg(response, 401, "invalid token").await;
    // Malformed, unknown or missing.
    for body in [
        json!({"mfa_token": "not-a-token", "code": right}),
        json!({"mfa_token": "A".repeat(43), "code": right}),
    ] {
        assert_msg(second_step(&app, FROM, body).await, 401, "invalid token").await;
    }
    let token = login_for_token(&app, &e.email, FROM).await;
    // No code at all is no valid code, and does not use the token up.
    for body in [
        json!({"mfa_token": token}),
        json!({"mfa_token": token, "code": "", "recovery_code": ""}),
    ] {
        for _ in 0..3 {
            let response = second_step(&app, FROM, body.clone()).await;
            assert_msg(response, 401, "invalid code").await;
        }
    }
    assert_msg(
        second_step(&app, FROM, json!({"code": right})).await,
        400,
        "invalid parameter",
    )
    .await;
    // A password change between the two steps wins (rule 15.1).
    let change =
        json!({"current_password": PASSWORD, "new_password": "new-password-456", "code": right});
    let response = app
        .call(
            reqwest::Method::PUT,
            "/info/password",
            Some(&e.access),
            Some(&change),
        )
        .await;
    assert_msg(response, 200, "ok").await;
    next_step(&clock);
    let response = second_step(
        &app,
        FROM,
        json!({"mfa_token": token, "code": code(&e.secret, &clock, 0)}),
    )
    .await;
    assert_msg(response, 401, "authentication failed").await;
}

async fn wrong_codes_count_as_failed_logins(backend: Backend) {
    let clock = Arc::new(ManualClock::starting_now());
    let app = spawn_at(&TestDatabase::fresh(&backend).await, &clock, None, |_| {}).await;
    let e = enrolled(&app, &clock, 12).await;
    // LOGIN_MAX_FAILURES (5) wrong codes over two mfa_tokens lock the (email, address).
    for n in 0..5 {
        let token = login_for_token(&app, &e.email, FROM).await;
        let response = second_step(
            &app,
            FROM,
            json!({"mfa_token": token, "code": format!("{n:06}")}),
        )
        .await;
        assert_msg(response, 401, "invalid code").await;
    }
    let response = login_from(&app, &e.email, PASSWORD, FROM).await;
    assert_msg(response, 429, "too many attempts").await;
    // A right password from elsewhere cleared nothing: only a finished second step does.
    let other = "203.0.113.10";
    let token = login_for_token(&app, &e.email, other).await;
    let response = second_step(
        &app,
        other,
        json!({"mfa_token": token, "code": code(&e.secret, &clock, 0)}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_msg(
        login_from(&app, &e.email, PASSWORD, FROM).await,
        429,
        "too many attempts",
    )
    .await;
}

/// On a shared database without `MFA_ENCRYPTION_KEY` every replica would seal with a key
/// of its own: enrolment answers 503 and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_on_a_database_server_enrolment_is_503() {
    let Some(backend) =
        Backend::server_or_sqlite("mysql").filter(|b| !matches!(b, Backend::Sqlite))
    else {
        eprintln!("skipped: needs TEST_MYSQL_DSN");
        return;
    };
    let app = spawn_app_with(&backend, |s| s.mfa.encryption_key = None).await;
    let (access, _) = app.signup(&customer(13)).await;
    let response = app
        .call(
            reqwest::Method::POST,
            "/info/mfa/totp",
            Some(&access),
            Some(&json!({"password": PASSWORD})),
        )
        .await;
    assert_msg(response, 503, "second factor not configured").await;
    assert_eq!(
        app.get_json("/info/account", &access).await["mfa"],
        json!([])
    );
}

/// The embedded default keeps a generated key in DATA_DIR: a secret enrolled before a
/// restart still opens after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_key_on_sqlite_survives_a_restart() {
    let clock = Arc::new(ManualClock::starting_now());
    let database = TestDatabase::fresh(&Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_path_buf();
    let configure = |s: &mut saga_account::config::Settings| {
        s.mfa.encryption_key = None;
        s.database.data_dir = data_dir.clone();
    };
    let app = spawn_at(&database, &clock, None, configure).await;
    let e = enrolled(&app, &clock, 14).await;
    app.shutdown().await.unwrap();
    let key = std::fs::read_to_string(dir.path().join("mfa_key")).unwrap();
    assert_eq!(key.trim().len(), 44, "32 bytes in base64");
    let app = spawn_at(&database, &clock, None, configure).await;
    let token = login_for_token(&app, &e.email, FROM).await;
    let response = second_step(
        &app,
        FROM,
        json!({"mfa_token": token, "code": code(&e.secret, &clock, 0)}),
    )
    .await;
    assert_eq!(response.status(), 200);
}

/// A caller built from the proto without `amr` (the Go service's) decodes the reply as
/// before; one built from the new proto reads `amr`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_of_the_old_proto_keep_working() {
    #[derive(Clone, PartialEq, prost::Message)]
    struct OldPayload {
        #[prost(string, tag = "1")]
        access_token: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct OldResponse {
        #[prost(uint64, tag = "1")]
        customer_id: u64,
        #[prost(bool, tag = "2")]
        expired: bool,
    }
    let clock = Arc::new(ManualClock::starting_now());
    let app = spawn_at(
        &TestDatabase::fresh(&Backend::Sqlite).await,
        &clock,
        None,
        |_| {},
    )
    .await;
    let e = enrolled(&app, &clock, 15).await;
    let token = login_for_token(&app, &e.email, FROM).await;
    let response = second_step(
        &app,
        FROM,
        json!({"mfa_token": token, "code": code(&e.secret, &clock, 0)}),
    )
    .await;
    let (access, _) = tokens_of(response).await;
    let id = app.customer_of(&access).0;

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", app.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut old = tonic::client::Grpc::new(channel);
    old.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/auth.AuthService/Auth");
    let codec = tonic_prost::ProstCodec::<OldPayload, OldResponse>::default();
    let reply = old
        .unary(
            tonic::Request::new(OldPayload {
                access_token: access.clone(),
            }),
            path,
            codec,
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reply,
        OldResponse {
            customer_id: id,
            expired: false
        }
    );

    let new = app
        .grpc()
        .await
        .auth(saga_account::transport::grpc::pb::AuthPayload {
            access_token: access,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (new.customer_id, new.expired, new.amr),
        (id, false, vec!["pwd".to_owned(), "otp".to_owned()])
    );
}
