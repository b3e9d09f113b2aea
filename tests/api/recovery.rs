//! Password reset and email verification (SPEC section 13) against a real SMTP server in
//! the test process: the tests read the mail the service sent, take the token from its
//! link, and finish the flow over HTTP.

use std::{sync::Arc, time::Duration};

use reqwest::Method;
use saga_account::{config::Settings, domain::clock::ManualClock};
use serde_json::{Value, json};

use crate::{backend_tests, helpers::*};

backend_tests!(
    reset_end_to_end_over_smtp,
    without_smtp_mails_are_eml_files_that_finish_a_reset,
    reset_tokens_are_single_use_and_expire,
    a_new_reset_voids_the_older_tokens,
    two_resets_racing_with_one_token_exactly_one_wins,
    unknown_emails_get_the_same_answer_and_no_mail,
    verification_and_email_change,
    mail_limits_answer_the_same_and_send_nothing,
    the_outbox_survives_a_restart_with_smtp_down_at_first,
    two_replicas_never_send_one_mail_twice,
    tokens_are_bound_to_their_purpose_and_address,
    verification_tokens_expire_after_verify_token_seconds,
    by_default_five_mails_an_hour_go_to_one_email,
);

const RESET: &str = "reset-password";
const VERIFY: &str = "verify-email";

async fn forgot(app: &TestApp, email: &str) {
    assert_msg(
        app.post("/auth/password/forgot", &json!({"email": email}))
            .await,
        202,
        "ok",
    )
    .await;
}

async fn reset(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.post(
        "/auth/password/reset",
        &json!({"token": token, "new_password": password}),
    )
    .await
}

async fn outbox_rows(app: &TestApp) -> i64 {
    app.database.query("SELECT COUNT(*) FROM mail_outbox").await[0][0]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

async fn reset_end_to_end_over_smtp(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(&backend, with_smtp(&sink)).await;
    let email = email_of(300);
    let (access, _) = app.signup(&customer(300)).await;
    let (other_access, _) = app.login(&email, "password-123").await;
    // Failed logins up to the lockout: a reset clears them.
    for _ in 0..5 {
        app.post(
            "/auth/login",
            &json!({"email": email, "password": "wrong-password"}),
        )
        .await;
    }
    let locked = app
        .post(
            "/auth/login",
            &json!({"email": email, "password": "password-123"}),
        )
        .await;
    assert_eq!(locked.status(), 429);

    forgot(&app, &email).await;
    let mail = sink
        .wait_for_subject(&email, "Reset your password", 1)
        .await;
    let link = mail.link(RESET);
    assert!(
        link.starts_with("https://shop.example/reset-password?token="),
        "{link}"
    );
    let token = mail.token(RESET);
    assert_eq!(token.len(), 43);
    assert!(mail.html().contains(&token), "the HTML part carries it too");
    assert!(mail.text().contains("Ming"), "{}", mail.text());
    // Only its hash is stored.
    let stored = app
        .database
        .query("SELECT COUNT(*) FROM mail_tokens WHERE purpose = 'reset'")
        .await;
    assert_eq!(stored[0][0].as_deref(), Some("1"));
    let all = format!(
        "{:?}{:?}",
        app.database.query("SELECT * FROM mail_tokens").await,
        app.database.query("SELECT * FROM mail_outbox").await
    );
    assert!(!all.contains(&token));

    // Bad input first: nothing changes.
    assert_msg(reset(&app, &token, "short").await, 400, "invalid parameter").await;
    assert_msg(
        app.post(
            "/auth/password/reset",
            &json!({"new_password": "new-password-456"}),
        )
        .await,
        400,
        "invalid parameter",
    )
    .await;
    assert_msg(
        reset(&app, "not-a-token", "new-password-456").await,
        400,
        "invalid or expired token",
    )
    .await;

    let done = reset(&app, &token, "new-password-456").await;
    let body: Value = done.json().await.unwrap();
    assert_eq!(body, json!({"msg": "ok"}), "no tokens returned");
    // The new password logs in (the lockout is gone), the old one does not.
    app.login(&email, "new-password-456").await;
    assert_msg(
        app.post(
            "/auth/login",
            &json!({"email": email, "password": "password-123"}),
        )
        .await,
        401,
        "authentication failed",
    )
    .await;
    // Every session that existed is revoked.
    for token in [&access, &other_access] {
        assert_msg(
            app.get_auth("/info/person", token).await,
            401,
            "token revoked",
        )
        .await;
    }
    let changed = sink
        .wait_for_subject(&email, "Your password was changed", 1)
        .await;
    assert!(!changed.text().contains("token="));
    // The link reached the address: it is verified now.
    let (fresh, _) = app.login(&email, "new-password-456").await;
    let account = app.get_json("/info/account", &fresh).await;
    assert_eq!(account["email_verified"], true, "{account}");
    let scrape = app.scrape().await;
    assert!(
        scrape.contains("account_password_resets_total{outcome=\"success\"} 1"),
        "{scrape}"
    );
    assert!(scrape.contains("account_mail_sent_total{kind=\"password_reset\"} 1"));
}

/// The `.eml` files under `DATA_DIR/mail/`, whole ones only (a file being written is a
/// hidden `.partial` until it is renamed).
async fn eml_files(app: &TestApp) -> Vec<ReceivedMail> {
    let Ok(entries) = std::fs::read_dir(app.data_dir.join("mail")) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| ReceivedMail {
            to: Vec::new(),
            raw: std::fs::read(p).unwrap(),
        })
        .collect()
}

/// Development without `SMTP_URL`: the mail is a `.eml` file, a real message whose link
/// finishes the reset; an unknown email writes nothing.
async fn without_smtp_mails_are_eml_files_that_finish_a_reset(backend: Backend) {
    let app = spawn_app_with(&backend, |s| {
        assert!(s.mail.smtp_url.is_none(), "no SMTP by default");
        s.mail.public_base_url = "https://shop.example".into();
    })
    .await;
    let email = email_of(310);
    app.signup(&customer(310)).await;
    forgot(&app, "nobody@example.com").await;
    forgot(&app, &email).await;
    // A row leaves the outbox once its file is written (or it was skipped).
    poll_until(async || outbox_rows(&app).await, |n| *n == 0).await;
    let files = eml_files(&app).await;
    assert_eq!(files.len(), 1, "one file, the known customer's");
    let mail = &files[0];

    let parsed = mail_parser::MessageParser::default()
        .parse(&mail.raw)
        .expect("an RFC 5322 message");
    let to = parsed
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap();
    assert_eq!(to, email);
    assert_eq!(mail.subject(), "Reset your password");
    assert!(
        mail.link(RESET)
            .starts_with("https://shop.example/reset-password?token="),
        "{}",
        mail.text()
    );
    let token = mail.token(RESET);
    assert_eq!(token.len(), 43);
    assert!(mail.html().contains(&token));

    assert_msg(reset(&app, &token, "new-password-456").await, 200, "ok").await;
    app.login(&email, "new-password-456").await;
    assert_msg(
        reset(&app, &token, "other-password-789").await,
        400,
        "invalid or expired token",
    )
    .await;
    // The "password changed" notice lands next to it.
    let files = poll_until(async || eml_files(&app).await, |f| f.len() == 2).await;
    assert!(
        files
            .iter()
            .any(|m| m.subject() == "Your password was changed"),
        "{:?}",
        files.iter().map(ReceivedMail::subject).collect::<Vec<_>>()
    );
}

async fn reset_tokens_are_single_use_and_expire(backend: Backend) {
    let sink = SmtpSink::start().await;
    let database = TestDatabase::fresh(&backend).await;
    let clock = Arc::new(ManualClock::starting_now());
    let app = spawn_app_at_time(&database, clock.clone(), |s| {
        with_smtp(&sink)(s);
        s.abuse.min_password_score = 3;
    })
    .await;
    let email = email_of(301);
    let mut body = customer(301);
    body["password"] = json!("correct horse battery staple");
    app.signup(&body).await;

    forgot(&app, &email).await;
    let token = sink.wait_for(&email, 1).await[0].token(RESET);
    // A weak password is refused and leaves the token usable.
    assert_msg(
        reset(&app, &token, "password1").await,
        400,
        "password too weak",
    )
    .await;
    assert_eq!(
        reset(&app, &token, "violet tapestry under granite")
            .await
            .status(),
        200
    );
    // Used: refused, and nothing changes.
    assert_msg(
        reset(&app, &token, "another long passphrase here").await,
        400,
        "invalid or expired token",
    )
    .await;
    app.login(&email, "violet tapestry under granite").await;

    // A token past RESET_TOKEN_SECONDS (1800) is refused.
    forgot(&app, &email).await;
    let token = sink
        .wait_for_subject(&email, "Reset your password", 2)
        .await
        .token(RESET);
    clock.advance(Duration::from_secs(1801));
    assert_msg(
        reset(&app, &token, "another long passphrase here").await,
        400,
        "invalid or expired token",
    )
    .await;
    app.login(&email, "violet tapestry under granite").await;
}

async fn a_new_reset_voids_the_older_tokens(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(&backend, with_smtp(&sink)).await;
    let email = email_of(302);
    app.signup(&customer(302)).await;
    forgot(&app, &email).await;
    let first = sink.wait_for(&email, 1).await[0].token(RESET);
    forgot(&app, &email).await;
    let second = sink.wait_for(&email, 2).await[1].token(RESET);
    assert_ne!(first, second);
    assert_msg(
        reset(&app, &first, "new-password-456").await,
        400,
        "invalid or expired token",
    )
    .await;
    assert_eq!(reset(&app, &second, "new-password-456").await.status(), 200);
}

async fn two_resets_racing_with_one_token_exactly_one_wins(backend: Backend) {
    let sink = SmtpSink::start().await;
    let database = TestDatabase::fresh(&backend).await;
    let one = spawn_app_on(&database, with_smtp(&sink)).await;
    let two = spawn_app_on(&database, with_smtp(&sink)).await;
    let email = email_of(303);
    one.signup(&customer(303)).await;
    forgot(&one, &email).await;
    let token = sink.wait_for(&email, 1).await[0].token(RESET);
    for round in 0..3 {
        let (a, b) = tokio::join!(
            reset(&one, &token, "first-password-1"),
            reset(&two, &token, "second-password-2"),
        );
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort();
        let expected = if round == 0 { [200, 400] } else { [400, 400] };
        assert_eq!(statuses, expected, "round {round}");
    }
    let first = one
        .post(
            "/auth/login",
            &json!({"email": email, "password": "first-password-1"}),
        )
        .await
        .status();
    let second = one
        .post(
            "/auth/login",
            &json!({"email": email, "password": "second-password-2"}),
        )
        .await
        .status();
    assert_eq!(
        [first.as_u16(), second.as_u16()]
            .iter()
            .filter(|s| **s == 200)
            .count(),
        1,
        "exactly one password was set"
    );
}

async fn unknown_emails_get_the_same_answer_and_no_mail(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(&backend, with_smtp(&sink)).await;
    app.signup(&customer(304)).await;
    let inactive = app.signup(&customer(305)).await;
    app.deactivate(app.customer_of(&inactive.0)).await;
    forgot(&app, "nobody@example.com").await;
    forgot(&app, &email_of(305)).await;
    assert_msg(
        app.post("/auth/password/forgot", &json!({"email": "not an email"}))
            .await,
        400,
        "invalid parameter",
    )
    .await;
    // Both rows are handled (and dropped) off the request path; no mail goes out.
    poll_until(async || outbox_rows(&app).await, |n| *n == 0).await;
    let scrape = poll_until(
        async || app.scrape().await,
        |s| s.contains("account_mail_skipped_total{kind=\"password_reset\"} 2"),
    )
    .await;
    assert!(
        scrape.contains("account_mail_skipped_total{kind=\"password_reset\"} 2"),
        "{scrape}"
    );
    assert!(sink.mails().await.is_empty());
}

async fn verification_and_email_change(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(&backend, with_smtp(&sink)).await;
    let email = email_of(306);
    let (access, _) = app.signup(&customer(306)).await;
    let id = app.customer_of(&access);
    let account = app.get_json("/info/account", &access).await;
    assert_eq!(account["id"], id.to_string());
    assert_eq!(account["email"], email.as_str());
    assert_eq!(account["email_verified"], false);
    assert_eq!(account["active"], true);
    assert!(account["created_at"].as_str().unwrap().ends_with('Z'));
    // No second factor (SPEC section 16).
    assert_eq!(account["mfa"], serde_json::json!([]));
    assert_eq!(account.as_object().unwrap().len(), 6, "{account}");
    assert_empty_401(
        app.call(Method::POST, "/info/email/verification", None, None)
            .await,
    )
    .await;

    let sent = app
        .call(
            Method::POST,
            "/info/email/verification",
            Some(&access),
            None,
        )
        .await;
    assert_eq!(sent.status(), 202);
    let mail = sink.wait_for_subject(&email, "Verify", 1).await;
    let token = mail.token(VERIFY);
    assert!(
        mail.link(VERIFY)
            .starts_with("https://shop.example/verify-email?token=")
    );
    let verify = |token: String| {
        let app = &app;
        async move {
            app.post("/auth/email/verify", &json!({"token": token}))
                .await
        }
    };
    assert_msg(
        verify("nonsense".into()).await,
        400,
        "invalid or expired token",
    )
    .await;
    assert_msg(verify(token.clone()).await, 200, "ok").await;
    // Idempotent for the same, unchanged email.
    assert_msg(verify(token.clone()).await, 200, "ok").await;
    assert_eq!(
        app.get_json("/info/account", &access).await["email_verified"],
        true
    );

    // A changed email is unverified again, and the old token no longer works.
    let changed = app
        .put_auth(
            "/info/person",
            &access,
            &json!({"firstname": "Ming", "lastname": "Hsu", "email": "new306@example.com"}),
        )
        .await;
    assert_eq!(changed.status(), 200);
    assert_eq!(
        app.get_json("/info/account", &access).await["email_verified"],
        false
    );
    assert_msg(verify(token).await, 400, "invalid or expired token").await;
    // A token sent to the old address before the change is refused too.
    app.call(
        Method::POST,
        "/info/email/verification",
        Some(&access),
        None,
    )
    .await;
    let token = sink
        .wait_for_subject("new306@example.com", "Verify", 1)
        .await
        .token(VERIFY);
    assert_msg(verify(token).await, 200, "ok").await;
    assert_eq!(
        app.get_json("/info/account", &access).await["email_verified"],
        true
    );
    // A row the Go service wrote (no verification) starts unverified; a change made
    // behind our back (a Go replica) unverifies too.
    app.sql(&format!(
        "UPDATE customers SET email = 'go306@example.com' WHERE id = {}",
        id.0
    ))
    .await;
    assert_eq!(
        app.get_json("/info/account", &access).await["email_verified"],
        false
    );
}

async fn mail_limits_answer_the_same_and_send_nothing(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(&backend, |s| {
        with_smtp(&sink)(s);
        s.mail_limits.per_email_per_hour = 2;
        s.mail_limits.per_ip_per_hour = 3;
    })
    .await;
    app.signup(&customer(307)).await;
    app.signup(&customer(308)).await;
    let (a, b) = (email_of(307), email_of(308));
    for _ in 0..4 {
        forgot(&app, &a).await;
    }
    // The address may ask three times: a's first two go, its third hits the per-email
    // limit (2); a's fourth and b's request hit the per-address limit (3). All got 202.
    forgot(&app, &b).await;
    sink.wait_for(&a, 2).await;
    poll_until(async || outbox_rows(&app).await, |n| *n == 0).await;
    let scrape = app.scrape().await;
    assert!(
        scrape.contains("account_mail_requests_limited_total{limit=\"email\"} 1"),
        "{scrape}"
    );
    assert!(scrape.contains("account_mail_requests_limited_total{limit=\"ip\"} 2"));
    assert_eq!(sink.mails().await.len(), 2, "nothing beyond the limits");
}

async fn the_outbox_survives_a_restart_with_smtp_down_at_first(backend: Backend) {
    let database = TestDatabase::fresh(&backend).await;
    let clock = Arc::new(ManualClock::starting_now());
    let addr = SmtpSink::free_addr().await;
    let url = format!("smtp://{addr}?tls=none");
    let configure = |s: &mut Settings| {
        s.mail.smtp_url = saga_account::service::mail::SmtpUrl::parse(&url);
        s.mail.send_timeout = Duration::from_secs(2);
    };
    let first = spawn_app_at_time(&database, clock.clone(), configure).await;
    let email = email_of(309);
    first.signup(&customer(309)).await;
    forgot(&first, &email).await;
    // The attempt fails (nothing listens) and is scheduled again.
    let scrape = poll_until(
        async || first.scrape().await,
        |s| s.contains("account_mail_retried_total{kind=\"password_reset\"} 1"),
    )
    .await;
    assert!(
        scrape.contains("account_mail_retried_total{kind=\"password_reset\"} 1"),
        "{scrape}"
    );
    first.shutdown().await.unwrap();
    assert_eq!(
        outbox_rows_of(&database).await,
        1,
        "the row outlives the process"
    );

    // The server comes up, a new process starts, the retry comes due: the mail arrives.
    let sink = SmtpSink::start_at(addr).await;
    let second = spawn_app_at_time(&database, clock.clone(), configure).await;
    clock.advance(Duration::from_secs(11));
    let mail = sink.wait_for(&email, 1).await;
    let token = mail[0].token(RESET);
    assert_eq!(
        reset(&second, &token, "new-password-456").await.status(),
        200
    );
    poll_until(async || outbox_rows(&second).await, |n| *n == 0).await;
}

async fn tokens_are_bound_to_their_purpose_and_address(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(&backend, with_smtp(&sink)).await;
    let email = email_of(311);
    let (access, _) = app.signup(&customer(311)).await;
    forgot(&app, &email).await;
    let reset_token = sink
        .wait_for_subject(&email, "Reset your password", 1)
        .await
        .token(RESET);
    app.call(
        Method::POST,
        "/info/email/verification",
        Some(&access),
        None,
    )
    .await;
    let verify_token = sink
        .wait_for_subject(&email, "Verify", 1)
        .await
        .token(VERIFY);
    // Each token works for its own purpose only; a refusal changes nothing.
    assert_msg(
        reset(&app, &verify_token, "new-password-456").await,
        400,
        "invalid or expired token",
    )
    .await;
    assert_msg(
        app.post("/auth/email/verify", &json!({"token": reset_token}))
            .await,
        400,
        "invalid or expired token",
    )
    .await;
    assert_eq!(
        app.get_json("/info/account", &access).await["email_verified"],
        false
    );
    // Malformed bodies: 400, nothing else.
    for body in [json!({}), json!({"token": 42}), json!({"token": ""})] {
        let answer = app.post("/auth/email/verify", &body).await;
        assert_eq!(answer.status(), 400, "{body}");
    }
    assert_msg(
        app.post_raw("/auth/password/forgot", "{not json", "application/json")
            .await,
        400,
        "invalid parameter",
    )
    .await;
    assert_msg(
        app.post("/auth/password/forgot", &json!({})).await,
        400,
        "invalid parameter",
    )
    .await;

    // A reset link sent to an address the customer has left since is refused.
    let changed = app
        .put_auth(
            "/info/person",
            &access,
            &json!({"firstname": "Ming", "lastname": "Hsu", "email": "moved311@example.com"}),
        )
        .await;
    assert_eq!(changed.status(), 200);
    assert_msg(
        reset(&app, &reset_token, "new-password-456").await,
        400,
        "invalid or expired token",
    )
    .await;
    app.login("moved311@example.com", "password-123").await;
    assert_eq!(app.get_auth("/info/person", &access).await.status(), 200);
}

async fn verification_tokens_expire_after_verify_token_seconds(backend: Backend) {
    let sink = SmtpSink::start().await;
    let database = TestDatabase::fresh(&backend).await;
    let clock = Arc::new(ManualClock::starting_now());
    let app = spawn_app_at_time(&database, clock.clone(), with_smtp(&sink)).await;
    let email = email_of(312);
    let (access, _) = app.signup(&customer(312)).await;
    let send = async |access: &str| {
        let sent = app
            .call(Method::POST, "/info/email/verification", Some(access), None)
            .await;
        assert_eq!(sent.status(), 202);
    };
    send(&access).await;
    let first = sink
        .wait_for_subject(&email, "Verify", 1)
        .await
        .token(VERIFY);
    // VERIFY_TOKEN_SECONDS (86400) later the link is dead; a day less a second it is not.
    clock.advance(Duration::from_secs(86_401));
    assert_msg(
        app.post("/auth/email/verify", &json!({"token": first}))
            .await,
        400,
        "invalid or expired token",
    )
    .await;
    let (access, _) = app.login(&email, "password-123").await;
    assert_eq!(
        app.get_json("/info/account", &access).await["email_verified"],
        false
    );
    send(&access).await;
    let second = sink
        .wait_for_subject(&email, "Verify", 2)
        .await
        .token(VERIFY);
    clock.advance(Duration::from_secs(86_399));
    assert_msg(
        app.post("/auth/email/verify", &json!({"token": second}))
            .await,
        200,
        "ok",
    )
    .await;
}

async fn by_default_five_mails_an_hour_go_to_one_email(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(&backend, with_smtp(&sink)).await;
    let email = email_of(313);
    app.signup(&customer(313)).await;
    for _ in 0..6 {
        forgot(&app, &email).await;
    }
    sink.wait_for(&email, 5).await;
    poll_until(async || outbox_rows(&app).await, |n| *n == 0).await;
    assert_eq!(
        sink.mails().await.len(),
        5,
        "MAIL_MAX_PER_EMAIL_PER_HOUR is 5"
    );
    assert!(
        app.scrape()
            .await
            .contains("account_mail_requests_limited_total{limit=\"email\"} 1")
    );
}

async fn outbox_rows_of(database: &TestDatabase) -> i64 {
    database.query("SELECT COUNT(*) FROM mail_outbox").await[0][0]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

async fn two_replicas_never_send_one_mail_twice(backend: Backend) {
    const N: u32 = 20;
    let sink = SmtpSink::start().await;
    let database = TestDatabase::fresh(&backend).await;
    let one = spawn_app_on(&database, with_smtp(&sink)).await;
    let two = spawn_app_on(&database, with_smtp(&sink)).await;
    let mut tokens = Vec::new();
    for n in 0..N {
        let app = if n % 2 == 0 { &one } else { &two };
        tokens.push(app.signup(&customer(400 + n)).await.0);
    }
    // Queued on both replicas at once; each replica's sender races the other for every row.
    let requests = tokens.iter().enumerate().map(|(i, token)| {
        let app = if i % 2 == 0 { &one } else { &two };
        app.call(Method::POST, "/info/email/verification", Some(token), None)
    });
    for response in futures_util::future::join_all(requests).await {
        assert_eq!(response.status(), 202);
    }
    poll_until(async || outbox_rows(&one).await, |n| *n == 0).await;
    let mails = sink.mails().await;
    assert_eq!(mails.len(), N as usize, "each mail exactly once");
    let mut recipients: Vec<_> = mails.iter().map(|m| m.to[0].clone()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), N as usize);
}

/// The "done when" setup: MariaDB and the Redis Cluster with two replicas. The mail
/// limit is shared, a reset mailed by one replica is finished on the other, and the
/// sessions on both end.
async fn two_replicas_on_mariadb_and_redis_cluster_share_limits_and_resets(backend: Backend) {
    let Some(redis) = crate::redis_harness::RedisTarget::cluster() else {
        return;
    };
    let sink = SmtpSink::start().await;
    let database = TestDatabase::fresh(&backend).await;
    let configure = |s: &mut Settings| {
        with_smtp(&sink)(s);
        redis.apply(s);
        s.mail_limits.per_email_per_hour = 2;
    };
    let one = spawn_app_on(&database, configure).await;
    let two = spawn_app_on(&database, configure).await;
    one.wait_subscribed().await;
    two.wait_subscribed().await;
    // A unique address: the cluster's counters outlive the test.
    let n = 500 + rand::random::<u32>() % 100_000;
    let email = email_of(n);
    let (on_one, _) = one.signup(&customer(n)).await;
    let (on_two, _) = two.login(&email, "password-123").await;
    forgot(&one, &email).await;
    forgot(&two, &email).await;
    forgot(&one, &email).await;
    let mails = sink.wait_for(&email, 2).await;
    poll_until(async || outbox_rows(&one).await, |n| *n == 0).await;
    assert_eq!(
        sink.wait_for(&email, 2).await.len(),
        2,
        "the third was over the shared limit"
    );
    // The newest token is the valid one (it voided the first); finish on the other replica.
    let newest = mails.iter().map(|m| m.token(RESET)).collect::<Vec<_>>();
    let statuses =
        futures_util::future::join_all(newest.iter().map(|t| reset(&two, t, "new-password-456")))
            .await
            .iter()
            .map(|r| r.status().as_u16())
            .collect::<Vec<_>>();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    for (app, token) in [(&one, &on_one), (&two, &on_two), (&two, &on_one)] {
        let answer = poll_until(
            async || app.get_auth("/info/person", token).await.status().as_u16(),
            |s| *s == 401,
        )
        .await;
        assert_eq!(answer, 401);
    }
    one.login(&email, "new-password-456").await;
    two.login(&email, "new-password-456").await;
}

crate::server_tests!(two_replicas_on_mariadb_and_redis_cluster_share_limits_and_resets,);
