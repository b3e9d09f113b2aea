//! Sessions (SPEC section 9): every route and status, rotation with its grace window and
//! reuse detection, replicas racing one refresh, revocation reaching other replicas with
//! and without Redis, legacy tokens, account deletion, eviction and the sweep.

use std::{sync::Arc, time::Duration};

use reqwest::Method;
use saga_account::{
    domain::clock::ManualClock,
    service::auth::{Claims, TokenKind},
    service::session::LegacyRefreshTokens,
    transport::grpc::pb::AuthPayload,
};
use serde_json::{Value, json};

use crate::{backend_tests, helpers::*, redis_harness::RedisTarget};

backend_tests!(
    session_routes_answer_as_the_spec_says,
    rotation_grace_window_and_reuse_detection,
    two_replicas_racing_one_refresh_rotate_it_once,
    password_change_keeps_this_session_and_ends_the_others,
    account_deletion_revokes_everything_and_frees_the_email,
    sessions_end_with_their_lifetime_and_are_swept,
    a_new_session_beyond_the_limit_evicts_the_least_recently_refreshed,
);

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post("/auth/refresh", &json!({"refresh_token": token}))
        .await
}

async fn sessions(app: &TestApp, access: &str) -> Vec<Value> {
    let body = app.get_json("/info/sessions", access).await;
    body["sessions"].as_array().cloned().unwrap_or_default()
}

async fn session_routes_answer_as_the_spec_says(backend: Backend) {
    let app = spawn_app(&backend).await;
    let other = app.signup(&customer(201)).await;
    let body = customer(200);
    let first = app.signup(&body).await;
    let second = app
        .login(body["email"].as_str().unwrap(), "password-123")
        .await;

    // The list: live sessions, newest first, the caller's marked, times in RFC 3339 UTC.
    let listed = sessions(&app, &second.0).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let second_sid = app
        .claims_of(&second.0, TokenKind::Access)
        .sid
        .unwrap()
        .to_string();
    let first_sid = app
        .claims_of(&first.0, TokenKind::Access)
        .sid
        .unwrap()
        .to_string();
    assert_eq!(listed[0]["id"], second_sid.as_str());
    assert_eq!(listed[0]["current"], true);
    assert_eq!(listed[1]["id"], first_sid.as_str());
    assert_eq!(listed[1]["current"], false);
    assert_eq!(listed[0]["client_ip"], "127.0.0.1");
    for field in ["created_at", "refreshed_at", "expires_at"] {
        let time = listed[0][field].as_str().unwrap();
        assert!(
            time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{time}"
        );
    }
    assert_eq!(
        listed[0].as_object().unwrap().len(),
        7,
        "exactly the documented fields: {}",
        listed[0]
    );

    // Ending a session: only the customer's own, live ones; 404 for anything else.
    let not_found = |r: reqwest::Response| assert_msg(r, 404, "session not found");
    let other_sid = app
        .claims_of(&other.0, TokenKind::Access)
        .sid
        .unwrap()
        .to_string();
    for id in [
        other_sid.as_str(),
        "not-a-session-id",
        "AAAAAAAAAAAAAAAAAAAAAA",
    ] {
        not_found(
            app.call(
                Method::DELETE,
                &format!("/info/sessions/{id}"),
                Some(&second.0),
                None,
            )
            .await,
        )
        .await;
    }
    assert_eq!(
        sessions(&app, &other.0).await.len(),
        1,
        "the other customer's is untouched"
    );
    assert_msg(
        app.call(
            Method::DELETE,
            &format!("/info/sessions/{first_sid}"),
            Some(&second.0),
            None,
        )
        .await,
        200,
        "ok",
    )
    .await;
    not_found(
        app.call(
            Method::DELETE,
            &format!("/info/sessions/{first_sid}"),
            Some(&second.0),
            None,
        )
        .await,
    )
    .await;
    assert_msg(
        app.get_auth("/info/person", &first.0).await,
        401,
        "token revoked",
    )
    .await;
    assert_msg(refresh(&app, &first.1).await, 401, "token revoked").await;

    // Logout with the refresh token in the body.
    let third = app
        .login(body["email"].as_str().unwrap(), "password-123")
        .await;
    assert_msg(
        app.post("/auth/logout", &json!({"refresh_token": third.1}))
            .await,
        200,
        "ok",
    )
    .await;
    assert_msg(
        app.get_auth("/info/person", &third.0).await,
        401,
        "token revoked",
    )
    .await;
    assert_msg(
        app.post("/auth/logout", &json!({"refresh_token": third.1}))
            .await,
        401,
        "token revoked",
    )
    .await;
    assert_msg(
        app.post("/auth/logout", &json!({"refresh_token": "garbage"}))
            .await,
        401,
        "invalid token",
    )
    .await;
    // Neither a header nor a token: 401 with nothing said.
    assert_empty_401(app.post_raw("/auth/logout", "", "application/json").await).await;
    assert_empty_401(app.post("/auth/logout", &json!({})).await).await;
    assert_empty_401(
        app.call(Method::POST, "/auth/logout", Some("not-a-token"), None)
            .await,
    )
    .await;

    // Logout with the access token in the header.
    let fourth = app
        .login(body["email"].as_str().unwrap(), "password-123")
        .await;
    assert_msg(
        app.call(Method::POST, "/auth/logout", Some(&fourth.0), None)
            .await,
        200,
        "ok",
    )
    .await;
    assert_msg(
        app.get_auth("/info/shipping", &fourth.0).await,
        401,
        "token revoked",
    )
    .await;
    assert_eq!(
        sessions(&app, &second.0).await.len(),
        1,
        "only the second is left"
    );

    // Logout everywhere.
    let fifth = app
        .login(body["email"].as_str().unwrap(), "password-123")
        .await;
    assert_msg(
        app.call(Method::POST, "/auth/logout-all", Some(&fifth.0), None)
            .await,
        200,
        "ok",
    )
    .await;
    for (access, refresh_token) in [&second, &fifth] {
        assert_msg(
            app.get_auth("/info/person", access).await,
            401,
            "token revoked",
        )
        .await;
        assert_msg(refresh(&app, refresh_token).await, 401, "token revoked").await;
    }
    assert_empty_401(app.call(Method::POST, "/auth/logout-all", None, None).await).await;
    assert_empty_401(app.call(Method::GET, "/info/sessions", None, None).await).await;
    // The other customer never noticed.
    assert_eq!(app.get_auth("/info/person", &other.0).await.status(), 200);

    // gRPC Auth refuses a revoked session's access token.
    let refused = app
        .grpc()
        .await
        .auth(AuthPayload {
            access_token: second.0.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert_eq!(refused.message(), "token revoked");

    let text = app.scrape().await;
    for (reason, count) in [("logout", 3), ("logout_all", 2)] {
        let line = format!(r#"account_sessions_revoked_total{{reason="{reason}"}} {count}"#);
        assert!(text.contains(&line), "{line} in\n{text}");
    }
    assert!(text.contains("account_sessions_started_total 6"), "{text}");
    app.shutdown().await.unwrap();
}

async fn rotation_grace_window_and_reuse_detection(backend: Backend) {
    let database = TestDatabase::fresh(&backend).await;
    let clock = Arc::new(ManualClock::starting_now());
    let app = spawn_app_at_time(&database, clock.clone(), |_| {}).await;
    let (access, first) = app.signup(&customer(210)).await;

    let (_, second) = tokens_of(refresh(&app, &first).await).await;
    assert_ne!(second, first, "each refresh returns a new refresh token");
    let sid = app.claims_of(&access, TokenKind::Access).sid;
    assert_eq!(
        app.claims_of(&second, TokenKind::Refresh).sid,
        sid,
        "same session"
    );

    // A racing tab presents the used token within the grace window: 200, and the current
    // refresh token again, so that both tabs go on with one.
    clock.advance(Duration::from_secs(4));
    let (racing_access, racing) = tokens_of(refresh(&app, &first).await).await;
    assert_eq!(racing, second);
    assert_eq!(
        app.get_auth("/info/person", &racing_access).await.status(),
        200
    );

    // The current token still rotates.
    let (_, third) = tokens_of(refresh(&app, &second).await).await;
    // Later, a used token is a stolen one: the whole session ends.
    clock.advance(Duration::from_secs(6));
    assert_msg(refresh(&app, &second).await, 401, "token revoked").await;
    assert_msg(refresh(&app, &third).await, 401, "token revoked").await;
    assert_msg(
        app.get_auth("/info/person", &access).await,
        401,
        "token revoked",
    )
    .await;
    assert_msg(
        app.get_auth("/info/person", &racing_access).await,
        401,
        "token revoked",
    )
    .await;
    assert!(
        app.scrape()
            .await
            .contains(r#"account_sessions_revoked_total{reason="reuse"} 1"#)
    );
    let rows = database.query("SELECT revoke_reason FROM sessions").await;
    assert_eq!(rows, vec![vec![Some("reuse".to_owned())]]);
    app.shutdown().await.unwrap();

    // With rotation off, a refresh token can be used again and again, as in the Go service.
    let app = spawn_app_with(&backend, |s| s.session.rotation = false).await;
    let (_, token) = app.signup(&customer(211)).await;
    for _ in 0..3 {
        let (access, _) = tokens_of(refresh(&app, &token).await).await;
        assert_eq!(app.get_auth("/info/person", &access).await.status(), 200);
    }
    app.shutdown().await.unwrap();
}

async fn two_replicas_racing_one_refresh_rotate_it_once(backend: Backend) {
    let database = TestDatabase::fresh(&backend).await;
    let a = spawn_app_on(&database, |_| {}).await;
    let b = spawn_app_on(&database, |_| {}).await;
    for round in 0..5 {
        let (_, token) = a.signup(&customer(220 + round)).await;
        let (from_a, from_b) = tokio::join!(refresh(&a, &token), refresh(&b, &token));
        let (from_a, from_b) = (tokens_of(from_a).await.1, tokens_of(from_b).await.1);
        assert_eq!(
            from_a, from_b,
            "one replica rotated, the other answered within the grace window with its token"
        );
        let rotations = database
            .query(&format!(
                "SELECT COUNT(*) FROM sessions WHERE customer_id = {} AND previous_jti IS NOT NULL",
                a.claims_of(&token, TokenKind::Refresh).customer
            ))
            .await;
        assert_eq!(rotations, vec![vec![Some("1".to_owned())]]);
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

async fn password_change_keeps_this_session_and_ends_the_others(backend: Backend) {
    let app = spawn_app(&backend).await;
    let body = customer(230);
    let email = body["email"].as_str().unwrap();
    let (this, this_refresh) = app.signup(&body).await;
    let (other, other_refresh) = app.login(email, "password-123").await;
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});

    assert_msg(
        app.call(
            Method::PUT,
            "/info/password",
            Some(&this),
            Some(&change("wrong-password", "new-password-1")),
        )
        .await,
        401,
        "authentication failed",
    )
    .await;
    for bad in [
        json!({"current_password": "password-123"}),
        change("password-123", "short"),
        json!("x"),
    ] {
        assert_msg(
            app.call(Method::PUT, "/info/password", Some(&this), Some(&bad))
                .await,
            400,
            "invalid parameter",
        )
        .await;
    }
    // Nothing changed so far.
    assert_eq!(app.get_auth("/info/person", &other).await.status(), 200);

    assert_msg(
        app.call(
            Method::PUT,
            "/info/password",
            Some(&this),
            Some(&change("password-123", "new-password-1")),
        )
        .await,
        200,
        "ok",
    )
    .await;
    assert_eq!(
        app.get_auth("/info/person", &this).await.status(),
        200,
        "this session stays"
    );
    assert_eq!(refresh(&app, &this_refresh).await.status(), 200);
    assert_msg(
        app.get_auth("/info/person", &other).await,
        401,
        "token revoked",
    )
    .await;
    assert_msg(refresh(&app, &other_refresh).await, 401, "token revoked").await;
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
    app.login(email, "new-password-1").await;
    app.shutdown().await.unwrap();
}

async fn account_deletion_revokes_everything_and_frees_the_email(backend: Backend) {
    let app = spawn_app(&backend).await;
    let body = customer(240);
    let (access, refresh_token) = app.signup(&body).await;
    let id = app.customer_of(&access);
    let delete = |password: &str| json!({"password": password});

    assert_msg(
        app.call(
            Method::DELETE,
            "/info/account",
            Some(&access),
            Some(&delete("wrong-password")),
        )
        .await,
        401,
        "authentication failed",
    )
    .await;
    assert_msg(
        app.call(
            Method::DELETE,
            "/info/account",
            Some(&access),
            Some(&json!({})),
        )
        .await,
        400,
        "invalid parameter",
    )
    .await;
    assert_eq!(
        app.get_auth("/info/person", &access).await.status(),
        200,
        "nothing changed"
    );

    assert_msg(
        app.call(
            Method::DELETE,
            "/info/account",
            Some(&access),
            Some(&delete("password-123")),
        )
        .await,
        200,
        "ok",
    )
    .await;
    assert_msg(
        app.get_auth("/info/person", &access).await,
        401,
        "token revoked",
    )
    .await;
    assert_msg(
        refresh(&app, &refresh_token).await,
        404,
        "customer not found",
    )
    .await;
    let refused = app
        .grpc()
        .await
        .auth(AuthPayload {
            access_token: access.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.message(), "token revoked");
    assert_msg(
        app.post(
            "/auth/login",
            &json!({"email": body["email"], "password": "password-123"}),
        )
        .await,
        404,
        "customer not found",
    )
    .await;
    let rows = app
        .database
        .query(&format!(
            "SELECT COUNT(*) FROM sessions WHERE customer_id = {id}"
        ))
        .await;
    assert_eq!(
        rows,
        vec![vec![Some("0".to_owned())]],
        "the sessions are gone"
    );
    // The email and the phone number are free again.
    let (again, _) = app.signup(&body).await;
    assert_ne!(app.customer_of(&again), id);
    assert_eq!(
        app.get_json("/info/person", &again).await["email"],
        body["email"]
    );
    app.shutdown().await.unwrap();
}

async fn sessions_end_with_their_lifetime_and_are_swept(backend: Backend) {
    let database = TestDatabase::fresh(&backend).await;
    let clock = Arc::new(ManualClock::starting_now());
    let app = spawn_app_at_time(&database, clock.clone(), |s| {
        s.session.session_max = Duration::from_secs(1_000);
        s.session.access_ttl_secs = 300;
        s.session.refresh_ttl_secs = 900;
    })
    .await;
    let (access, mut refresh_token) = app.signup(&customer(250)).await;
    let started = app.claims_of(&access, TokenKind::Access).iat.unwrap();
    let (revoked_access, _) = app.login("ming250@example.com", "password-123").await;
    assert_eq!(
        app.call(Method::POST, "/auth/logout", Some(&revoked_access), None)
            .await
            .status(),
        200
    );
    // Refreshing keeps the session going, but no token outlives its session.
    clock.advance(Duration::from_secs(800));
    let (_, renewed) = tokens_of(refresh(&app, &refresh_token).await).await;
    refresh_token = renewed;
    let claims = app.claims_of(&refresh_token, TokenKind::Refresh);
    assert_eq!(claims.exp, started + 1_000, "capped at the session's end");
    clock.advance(Duration::from_secs(201));
    assert_msg(refresh(&app, &refresh_token).await, 401, "token expired").await;

    let count = |table: &'static str| {
        let database = database.clone();
        async move {
            database
                .query(&format!("SELECT COUNT(*) FROM {table}"))
                .await[0][0]
                .clone()
        }
    };
    assert_eq!(count("sessions").await, Some("2".into()));
    assert_eq!(count("session_revocations").await, Some("1".into()));
    app.auth.sessions().sweep().await;
    assert_eq!(
        count("sessions").await,
        Some("0".into()),
        "nothing of them can be presented"
    );
    assert_eq!(count("session_revocations").await, Some("0".into()));
    assert!(
        app.scrape()
            .await
            .contains(r#"account_sessions_revoked_total{reason="expired"} 1"#)
    );
    app.shutdown().await.unwrap();
}

async fn a_new_session_beyond_the_limit_evicts_the_least_recently_refreshed(backend: Backend) {
    let app = spawn_app_with(&backend, |s| s.session.max_per_customer = 2).await;
    let (_, first_refresh) = app.signup(&customer(260)).await;
    let (second, _) = app.login("ming260@example.com", "password-123").await;
    // Refreshing the first makes the second the least recently refreshed.
    let (first, _) = tokens_of(refresh(&app, &first_refresh).await).await;
    let (third, _) = app.login("ming260@example.com", "password-123").await;
    assert_msg(
        app.get_auth("/info/person", &second).await,
        401,
        "token revoked",
    )
    .await;
    for live in [&first, &third] {
        assert_eq!(app.get_auth("/info/person", live).await.status(), 200);
    }
    assert_eq!(sessions(&app, &third).await.len(), 2);
    assert!(
        app.scrape()
            .await
            .contains(r#"account_sessions_revoked_total{reason="evicted"} 1"#)
    );
    app.shutdown().await.unwrap();
}

/// Tokens minted by the Go service (no session): access tokens work until `exp`; refresh
/// tokens start a session, or are refused with `LEGACY_REFRESH_TOKENS=reject`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_tokens_keep_working() {
    let app = spawn_app(&Backend::Sqlite).await;
    let (access, _) = app.signup(&customer(270)).await;
    let id = app.customer_of(&access);
    let legacy = |kind| app.tokens.mint(&Claims::legacy(id, kind, now() + 300));
    assert_eq!(
        app.get_auth("/info/person", &legacy(TokenKind::Access))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.call(
            Method::POST,
            "/auth/logout",
            Some(&legacy(TokenKind::Access)),
            None
        )
        .await
        .status(),
        200,
        "nothing to end, nothing refused"
    );
    let (new_access, new_refresh) =
        tokens_of(refresh(&app, &legacy(TokenKind::Refresh)).await).await;
    assert!(app.claims_of(&new_access, TokenKind::Access).sid.is_some());
    assert!(
        app.claims_of(&new_refresh, TokenKind::Refresh)
            .jti
            .is_some()
    );
    app.shutdown().await.unwrap();

    let app = spawn_app_with(&Backend::Sqlite, |s| {
        s.session.legacy_refresh_tokens = LegacyRefreshTokens::Reject
    })
    .await;
    let (access, _) = app.signup(&customer(271)).await;
    let id = app.customer_of(&access);
    let token = app
        .tokens
        .mint(&Claims::legacy(id, TokenKind::Refresh, now() + 300));
    assert_msg(refresh(&app, &token).await, 401, "invalid token").await;
    app.shutdown().await.unwrap();
}

/// `customer deactivate` ends every session at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivation_revokes_every_session() {
    let app = spawn_app(&Backend::Sqlite).await;
    let (access, refresh_token) = app.signup(&customer(280)).await;
    app.deactivate(app.customer_of(&access)).await;
    assert_msg(
        app.get_auth("/info/person", &access).await,
        401,
        "token revoked",
    )
    .await;
    assert_msg(
        refresh(&app, &refresh_token).await,
        401,
        "customer inactive",
    )
    .await;
    assert!(
        app.scrape()
            .await
            .contains(r#"account_sessions_revoked_total{reason="deactivated"} 1"#)
    );
    app.shutdown().await.unwrap();
}

/// The time from a logout on one replica until `Auth` refuses the token on another.
async fn revocation_delay(a: &TestApp, b: &TestApp, n: u32) -> Duration {
    let (access, _) = a.signup(&customer(n)).await;
    let mut grpc = b.grpc().await;
    assert!(
        grpc.auth(AuthPayload {
            access_token: access.clone(),
        })
        .await
        .is_ok()
    );
    let started = std::time::Instant::now();
    assert_eq!(
        a.call(Method::POST, "/auth/logout", Some(&access), None)
            .await
            .status(),
        200
    );
    let refused = poll_until(
        async || {
            grpc.auth(AuthPayload {
                access_token: access.clone(),
            })
            .await
            .is_err()
        },
        |refused| *refused,
    )
    .await;
    assert!(refused, "the other replica refuses the token");
    started.elapsed()
}

/// Revocation reaches another replica within 1 s: through Redis pub/sub, and without Redis
/// through the database poll alone.
async fn revocation_reaches_another_replica_within_a_second(backend: Backend) {
    let database = TestDatabase::fresh(&backend).await;
    let a = spawn_app_on(&database, |_| {}).await;
    let b = spawn_app_on(&database, |_| {}).await;
    let mut without = Vec::new();
    for n in 0..3 {
        without.push(revocation_delay(&a, &b, 290 + n).await);
    }
    eprintln!("revocation delay between two replicas without Redis (database poll): {without:?}");
    assert!(
        without.iter().all(|d| *d < Duration::from_secs(1)),
        "{without:?}"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();

    let Some((redis, _server)) = RedisTarget::single() else {
        return;
    };
    // With Redis the database poll is made slow, so that only the channel can be this fast.
    let database = TestDatabase::fresh(&backend).await;
    let slow_poll = |s: &mut saga_account::config::Settings| {
        redis.apply(s);
        s.session.revocation_poll = Duration::from_secs(30);
    };
    let a = spawn_app_on(&database, slow_poll).await;
    let b = spawn_app_on(&database, slow_poll).await;
    a.wait_subscribed().await;
    b.wait_subscribed().await;
    let mut with = Vec::new();
    for n in 0..3 {
        with.push(revocation_delay(&a, &b, 295 + n).await);
    }
    eprintln!("revocation delay between two replicas with Redis (pub/sub): {with:?}");
    assert!(with.iter().all(|d| *d < Duration::from_secs(1)), "{with:?}");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// Redis cut off while a session is revoked: the other replica still refuses the token
/// within a poll of the database.
async fn revocation_survives_a_redis_outage(backend: Backend) {
    let Some((redis, _server)) = RedisTarget::single() else {
        return;
    };
    let target: std::net::SocketAddr = redis.addrs[0].parse().unwrap();
    let proxy = TcpProxy::start(target).await;
    let via_proxy = RedisTarget {
        addrs: vec![proxy.addr.to_string()],
        password: redis.password.clone(),
    };
    let database = TestDatabase::fresh(&backend).await;
    let a = spawn_app_on(&database, |s| via_proxy.apply(s)).await;
    let b = spawn_app_on(&database, |s| via_proxy.apply(s)).await;
    a.wait_subscribed().await;
    b.wait_subscribed().await;
    proxy.cut();
    let delay = revocation_delay(&a, &b, 299).await;
    eprintln!("revocation delay with Redis cut off: {delay:?}");
    assert!(delay < Duration::from_secs(1), "{delay:?}");
    proxy.restore().await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// A replica that starts after a revocation refuses the token from its first request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_starting_later_knows_earlier_revocations() {
    let database = TestDatabase::fresh(&Backend::Sqlite).await;
    let a = spawn_app_on(&database, |_| {}).await;
    let (access, _) = a.signup(&customer(300)).await;
    assert_eq!(
        a.call(Method::POST, "/auth/logout", Some(&access), None)
            .await
            .status(),
        200
    );
    let b = spawn_app_on(&database, |s| {
        s.session.revocation_poll = Duration::from_secs(3600)
    })
    .await;
    assert_msg(
        b.get_auth("/info/person", &access).await,
        401,
        "token revoked",
    )
    .await;
    assert_eq!(b.auth.sessions().revoked_count(), 1);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

crate::server_tests!(
    revocation_reaches_another_replica_within_a_second,
    revocation_survives_a_redis_outage,
);
