//! SPEC rule 15.2: an email change cannot become a takeover. The old address gets a notice
//! with a revert link (read from a real SMTP server in the test process and followed over
//! HTTP), a reset for the new address is held for a while, and a password can be asked
//! for; a second change within the revert window never outruns the owner.

use std::{sync::Arc, time::Duration};

use reqwest::Method;
use saga_account::{config::Settings, domain::clock::ManualClock};
use serde_json::json;

use crate::{backend_tests, helpers::*, redis_harness::RedisTarget};

backend_tests!(
    email_change_notice_reverts_the_email_and_ends_every_session,
    email_change_revert_refuses_a_taken_address_and_an_expired_token,
    email_change_two_reverts_racing_exactly_one_wins_on_every_replica,
    email_change_holds_the_reset_mail_for_the_new_address,
    email_change_needs_the_password_when_configured,
    email_change_twice_the_owner_wins,
);

const REVERT: &str = "revert-email";
const NOTICE: &str = "Your email address was changed";
const RESET_MAIL: &str = "Reset your password";
const OPS: &str = "ops.0123456789abcdef0123456789abcdef";

async fn change_email(app: &TestApp, access: &str, email: &str) -> reqwest::Response {
    app.put_auth(
        "/info/person",
        access,
        &json!({"firstname": "Ming", "lastname": "Hsu", "email": email}),
    )
    .await
}

async fn revert(app: &TestApp, token: &str) -> reqwest::Response {
    app.post("/auth/email/revert", &json!({"token": token}))
        .await
}

async fn forgot(app: &TestApp, email: &str) {
    let response = app
        .post("/auth/password/forgot", &json!({"email": email}))
        .await;
    assert_msg(response, 202, "ok").await;
}

async fn current_email(app: &TestApp, access: &str) -> String {
    app.get_json("/info/person", access).await["email"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Waits until the outbox is empty: every queued mail was sent or dropped.
async fn outbox_drained(app: &TestApp) {
    let rows = poll_until(
        async || app.database.query("SELECT COUNT(*) FROM mail_outbox").await,
        |rows| rows[0][0].as_deref() == Some("0"),
    )
    .await;
    assert_eq!(rows[0][0].as_deref(), Some("0"), "the outbox drains");
}

async fn email_change_notice_reverts_the_email_and_ends_every_session(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(&backend, with_smtp(&sink)).await;
    let old = email_of(400);
    let (access, refresh) = app.signup(&customer(400)).await;
    let (other_access, other_refresh) = app.login(&old, "password-123").await;

    // Another spelling of the same address is no change: no notice (the default needs no
    // password either way).
    let same = old.to_uppercase();
    assert_msg(change_email(&app, &access, &same).await, 200, "ok").await;
    assert!(
        app.scrape()
            .await
            .contains("account_mail_queued_total{kind=\"email_changed\"} 0")
    );

    let new = "alice.new@example.org";
    assert_msg(change_email(&app, &access, new).await, 200, "ok").await;
    let notice = sink.wait_for_subject(&old, NOTICE, 1).await;
    let text = notice.text();
    assert!(text.contains("a***@example.org"), "{text}");
    assert!(
        !text.contains(new) && !notice.html().contains(new),
        "masked"
    );
    let link = notice.link(REVERT);
    assert!(
        link.starts_with("https://shop.example/revert-email?token="),
        "{link}"
    );
    let token = notice.token(REVERT);
    assert!(notice.html().contains(&token));
    // The new address logs in and is unverified until the revert.
    app.login(new, "password-123").await;
    let account = app.get_json("/info/account", &access).await;
    assert_eq!(
        (
            account["email"].as_str(),
            account["email_verified"].as_bool()
        ),
        (Some(new), Some(false))
    );

    // Bad input changes nothing.
    assert_msg(
        app.post("/auth/email/revert", &json!({})).await,
        400,
        "invalid parameter",
    )
    .await;
    assert_msg(
        revert(&app, "not-a-token").await,
        400,
        "invalid or expired token",
    )
    .await;
    assert_eq!(current_email(&app, &access).await, new);

    assert_msg(revert(&app, &token).await, 200, "ok").await;
    // Every session ended: access tokens and refresh tokens of both sessions.
    for token in [&access, &other_access] {
        let response = poll_until(
            async || app.get_auth("/info/person", token).await.status(),
            |s| *s == 401,
        )
        .await;
        assert_eq!(response, 401);
    }
    for token in [&refresh, &other_refresh] {
        let response = app
            .post("/auth/refresh", &json!({"refresh_token": token}))
            .await;
        assert_msg(response, 401, "token revoked").await;
    }
    // The old address is back, verified; the new one no longer logs in.
    let (access, _) = app.login(&old, "password-123").await;
    let account = app.get_json("/info/account", &access).await;
    assert_eq!(account["email"].as_str().unwrap().to_lowercase(), old);
    assert_eq!(account["email_verified"], json!(true));
    let response = app
        .post(
            "/auth/login",
            &json!({"email": new, "password": "password-123"}),
        )
        .await;
    assert_msg(response, 404, "customer not found").await;
    // Used up.
    assert_msg(revert(&app, &token).await, 400, "invalid or expired token").await;
    // One notice for one change; the revert itself sends none.
    outbox_drained(&app).await;
    assert_eq!(sink.wait_for(&old, 1).await.len(), 1);
    // The restored address is proven: a reset for it is not held.
    forgot(&app, &old).await;
    sink.wait_for_subject(&old, RESET_MAIL, 1).await;
    let scrape = app.scrape().await;
    assert!(
        scrape.contains("account_email_reverts_total{outcome=\"success\"} 1"),
        "{scrape}"
    );
}

async fn email_change_revert_refuses_a_taken_address_and_an_expired_token(backend: Backend) {
    let sink = SmtpSink::start().await;
    let database = TestDatabase::fresh(&backend).await;
    let clock = Arc::new(ManualClock::starting_now());
    let app = spawn_app_at_time(&database, clock.clone(), with_smtp(&sink)).await;
    let old = email_of(401);
    let (access, _) = app.signup(&customer(401)).await;
    assert_msg(
        change_email(&app, &access, "b401@example.org").await,
        200,
        "ok",
    )
    .await;
    let token = sink.wait_for_subject(&old, NOTICE, 1).await.token(REVERT);

    // Someone else signs up with the freed address: the revert cannot take it back.
    let mut squatter = customer(402);
    squatter["email"] = json!(old);
    let (squatter_access, _) = app.signup(&squatter).await;
    assert_msg(revert(&app, &token).await, 400, "duplicate entry").await;
    assert_msg(revert(&app, &token).await, 400, "duplicate entry").await;
    assert_eq!(current_email(&app, &access).await, "b401@example.org");
    app.login("b401@example.org", "password-123").await;
    // Once the address is free again, the same link works.
    assert_msg(
        change_email(&app, &squatter_access, "elsewhere402@example.org").await,
        200,
        "ok",
    )
    .await;
    // (The squatter's own notice goes to the same mailbox.)
    sink.wait_for_subject(&old, NOTICE, 2).await;
    assert_msg(revert(&app, &token).await, 200, "ok").await;
    let (access, _) = app.login(&old, "password-123").await;

    // A link past EMAIL_REVERT_SECONDS (604800) is refused and changes nothing.
    assert_msg(
        change_email(&app, &access, "c401@example.org").await,
        200,
        "ok",
    )
    .await;
    let token = sink.wait_for_subject(&old, NOTICE, 3).await.token(REVERT);
    clock.advance(Duration::from_secs(604_801));
    assert_msg(revert(&app, &token).await, 400, "invalid or expired token").await;
    let (access, _) = app.login("c401@example.org", "password-123").await;
    assert_eq!(current_email(&app, &access).await, "c401@example.org");
}

async fn email_change_two_reverts_racing_exactly_one_wins_on_every_replica(backend: Backend) {
    let database = TestDatabase::fresh(&backend).await;
    reverts_race_on_two_replicas(&database, None, 403).await;
}

/// As above, the replicas sharing a Redis Cluster (the CI's), on MariaDB when configured.
async fn email_change_reverts_reach_every_replica_through_a_redis_cluster(backend: Backend) {
    let Some(redis) = RedisTarget::cluster() else {
        return;
    };
    let database = TestDatabase::fresh(&backend).await;
    // Addresses of their own: the MariaDB and PostgreSQL runs share the cluster.
    reverts_race_on_two_replicas(&database, Some(&redis), rand::random_range(500..900_000)).await;
}

async fn reverts_race_on_two_replicas(
    database: &Arc<TestDatabase>,
    redis: Option<&RedisTarget>,
    n: u32,
) {
    let sink = SmtpSink::start().await;
    let configure = |s: &mut Settings| {
        with_smtp(&sink)(s);
        if let Some(redis) = redis {
            redis.apply(s);
        }
    };
    let one = spawn_app_on(database, configure).await;
    let two = spawn_app_on(database, configure).await;
    if redis.is_some() {
        one.wait_subscribed().await;
        two.wait_subscribed().await;
    }
    let old = email_of(n);
    let new = format!("b{n}@example.org");
    let new = new.as_str();
    let (access, _) = one.signup(&customer(n)).await;
    assert_msg(change_email(&one, &access, new).await, 200, "ok").await;
    let token = sink.wait_for_subject(&old, NOTICE, 1).await.token(REVERT);
    // Replica two has the new address and the profile in its cache.
    let (access_two, _) = two.login(new, "password-123").await;
    assert_eq!(current_email(&two, &access_two).await, new);

    for round in 0..3 {
        let (a, b) = tokio::join!(revert(&one, &token), revert(&two, &token));
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort();
        let expected = if round == 0 { [200, 400] } else { [400, 400] };
        assert_eq!(statuses, expected, "round {round}");
    }
    // Within a second replica two has dropped what it cached and ended the session.
    let refused = poll_within(
        Duration::from_millis(1500),
        async || two.get_auth("/info/person", &access_two).await.status(),
        |s| *s == 401,
    )
    .await;
    assert_eq!(refused, 401);
    let status = poll_within(
        Duration::from_millis(1500),
        async || {
            two.post(
                "/auth/login",
                &json!({"email": new, "password": "password-123"}),
            )
            .await
            .status()
        },
        |s| *s == 404,
    )
    .await;
    assert_eq!(
        status, 404,
        "the new address's credentials are gone on replica two"
    );
    let (access_two, _) = two.login(&old, "password-123").await;
    assert_eq!(current_email(&two, &access_two).await.to_lowercase(), old);
}

async fn email_change_holds_the_reset_mail_for_the_new_address(backend: Backend) {
    let sink = SmtpSink::start().await;
    let database = TestDatabase::fresh(&backend).await;
    let clock = Arc::new(ManualClock::starting_now());
    let port = SmtpSink::free_addr().await.port();
    let smtp = with_smtp(&sink);
    let app = spawn_app_at_time(&database, clock.clone(), |s| {
        smtp(s);
        s.operator.port = port;
        s.operator.api_keys = saga_account::service::operator::keys::parse(OPS).unwrap();
    })
    .await;
    let new = "b404@example.org";
    let (access, _) = app.signup(&customer(404)).await;
    let id = app.customer_of(&access);
    assert_msg(change_email(&app, &access, new).await, 200, "ok").await;

    // Within EMAIL_CHANGE_RESET_HOLD_SECONDS (86400): the same 202, no mail, counted as
    // skipped.
    forgot(&app, new).await;
    outbox_drained(&app).await;
    let scrape = poll_until(
        async || app.scrape().await,
        |s| s.contains("account_mail_skipped_total{kind=\"password_reset\"} 1"),
    )
    .await;
    assert!(
        scrape.contains("account_mail_skipped_total{kind=\"password_reset\"} 1"),
        "{scrape}"
    );
    assert!(
        sink.mails()
            .await
            .iter()
            .all(|m| !m.to.contains(&new.to_owned()))
    );

    // The operator's reset still sends.
    let addr = app.admin_addr.unwrap();
    let response = app
        .client
        .request(
            Method::POST,
            format!("http://{addr}/admin/v1/customers/{id}/password-reset"),
        )
        .header("authorization", format!("ApiKey {OPS}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    sink.wait_for_subject(new, RESET_MAIL, 1).await;

    // After the hold, the customer's own request sends again.
    clock.advance(Duration::from_secs(86_401));
    forgot(&app, new).await;
    sink.wait_for_subject(new, RESET_MAIL, 2).await;
}

async fn email_change_needs_the_password_when_configured(backend: Backend) {
    let sink = SmtpSink::start().await;
    let smtp = with_smtp(&sink);
    let app = spawn_app_with(&backend, |s| {
        smtp(s);
        s.email_change.requires_password = true;
    })
    .await;
    let old = email_of(405);
    let (access, _) = app.signup(&customer(405)).await;
    let body = |password: Option<&str>| {
        let mut body = json!({"firstname": "Ming", "lastname": "Hsu", "email": "b405@example.org"});
        if let Some(password) = password {
            body["current_password"] = json!(password);
        }
        body
    };
    for password in [None, Some("wrong-password"), Some("x"), Some("")] {
        let response = app.put_auth("/info/person", &access, &body(password)).await;
        assert_msg(response, 401, "authentication failed").await;
    }
    assert_eq!(current_email(&app, &access).await, old, "nothing changed");
    // A new name with the same address (another spelling) needs no password.
    let response = app
        .put_auth(
            "/info/person",
            &access,
            &json!({"firstname": "Mei", "lastname": "Hsu", "email": old.to_uppercase()}),
        )
        .await;
    assert_msg(response, 200, "ok").await;
    let response = app
        .put_auth("/info/person", &access, &body(Some("password-123")))
        .await;
    assert_msg(response, 200, "ok").await;
    assert_eq!(current_email(&app, &access).await, "b405@example.org");
    sink.wait_for_subject(&old, NOTICE, 1).await;
}

/// An attacker with a session changes the owner's address twice: the notice of the second
/// change reaches the attacker's first address, and its link can only give the account
/// back to the owner. Whichever link is used first, the owner's address is back, the other
/// link is used up with it, and no reset mail reaches the attacker.
async fn email_change_twice_the_owner_wins(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(&backend, with_smtp(&sink)).await;
    for (n, attacker_first) in [(406, true), (407, false)] {
        let owner = email_of(n);
        let (first, second) = (format!("b{n}@evil.example"), format!("c{n}@evil.example"));
        let (stolen, _) = app.signup(&customer(n)).await;
        assert_msg(change_email(&app, &stolen, &first).await, 200, "ok").await;
        assert_msg(change_email(&app, &stolen, &second).await, 200, "ok").await;
        let owners = sink.wait_for_subject(&owner, NOTICE, 1).await.token(REVERT);
        let to_attacker = sink.wait_for_subject(&first, NOTICE, 1).await;
        assert!(to_attacker.text().contains("c***@evil.example"));
        let attackers = to_attacker.token(REVERT);
        // The new address cannot take the password meanwhile.
        forgot(&app, &second).await;

        let (used, refused) = if attacker_first {
            (&attackers, &owners)
        } else {
            (&owners, &attackers)
        };
        assert_msg(revert(&app, used).await, 200, "ok").await;
        assert_msg(revert(&app, refused).await, 400, "invalid or expired token").await;
        // Either way the owner's address is back and the stolen session is over.
        let (access, _) = app.login(&owner, "password-123").await;
        assert_eq!(current_email(&app, &access).await.to_lowercase(), owner);
        assert_eq!(app.get_auth("/info/person", &stolen).await.status(), 401);
        for address in [&first, &second] {
            let response = app
                .post(
                    "/auth/login",
                    &json!({"email": address, "password": "password-123"}),
                )
                .await;
            assert_eq!(response.status(), 404, "{address}");
        }
    }
    outbox_drained(&app).await;
    let to_attacker = sink.mails().await;
    assert!(
        !to_attacker.iter().any(|m| m.subject().contains(RESET_MAIL)),
        "no reset mail reached an attacker's address"
    );
}

crate::server_tests!(email_change_reverts_reach_every_replica_through_a_redis_cluster,);
