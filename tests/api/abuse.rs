//! Abuse defence (SPEC section 10): login throttling with doubling lockouts, shared through
//! Redis and kept per replica without it, the client address behind trusted proxies,
//! enumeration resistance, Argon2id with the transparent upgrade, password strength.

use std::{sync::Arc, time::Duration};

use reqwest::Method;
use saga_account::{domain::clock::ManualClock, service::auth::Algorithm};
use serde_json::json;

use crate::{backend_tests, helpers::*, redis_harness::RedisTarget};

backend_tests!(
    lockouts_begin_at_the_limit_and_double,
    a_bcrypt_row_is_upgraded_to_argon2id_on_login,
);

const EMAIL: &str = "ming400@example.com";

async fn login_as(
    app: &TestApp,
    email: &str,
    password: &str,
    forwarded: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/auth/login"))
        .json(&json!({"email": email, "password": password}));
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    request.send().await.unwrap()
}

/// The hashing pool's verifications so far.
fn verifications(app: &TestApp, algorithm: &str) -> u64 {
    app.metrics
        .hash_duration
        .with_label_values(&["verify", algorithm])
        .get_sample_count()
}

async fn assert_locked(response: reqwest::Response, retry_after: u64) {
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some(retry_after.to_string().as_str())
    );
    assert_msg(response, 429, "too many attempts").await;
}

async fn lockouts_begin_at_the_limit_and_double(backend: Backend) {
    let database = TestDatabase::fresh(&backend).await;
    let clock = Arc::new(ManualClock::starting_now());
    let app = spawn_app_at_time(&database, clock.clone(), |_| {}).await;
    app.signup(&customer(400)).await;

    for _ in 0..5 {
        assert_msg(
            login_as(&app, EMAIL, "wrong-password", None).await,
            401,
            "authentication failed",
        )
        .await;
    }
    // Locked: even the right password is refused, before any hashing.
    let verified = verifications(&app, "bcrypt");
    assert_locked(login_as(&app, EMAIL, "password-123", None).await, 60).await;
    clock.advance(Duration::from_secs(20));
    assert_locked(login_as(&app, EMAIL, "wrong-password", None).await, 40).await;
    assert_eq!(
        verifications(&app, "bcrypt"),
        verified,
        "no hashing while locked"
    );

    // After the lockout, one more failure locks again, for twice as long.
    clock.advance(Duration::from_secs(41));
    assert_msg(
        login_as(&app, EMAIL, "wrong-password", None).await,
        401,
        "authentication failed",
    )
    .await;
    assert_locked(login_as(&app, EMAIL, "password-123", None).await, 120).await;
    clock.advance(Duration::from_secs(121));
    assert_eq!(
        login_as(&app, EMAIL, "password-123", None).await.status(),
        200,
        "a success clears it"
    );
    for _ in 0..4 {
        assert_eq!(
            login_as(&app, EMAIL, "wrong-password", None).await.status(),
            401
        );
    }
    assert_eq!(
        login_as(&app, EMAIL, "password-123", None).await.status(),
        200
    );

    // Unknown emails are counted too (or a lockout would tell who is a customer).
    for _ in 0..5 {
        assert_msg(
            login_as(&app, "nobody@example.com", "x", None).await,
            404,
            "customer not found",
        )
        .await;
    }
    assert_locked(login_as(&app, "nobody@example.com", "x", None).await, 60).await;

    let text = app.scrape().await;
    assert!(
        text.contains(r#"account_login_lockouts_total{limit="email_ip"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"account_login_throttled_total{limit="email_ip"} 4"#),
        "{text}"
    );
    app.shutdown().await.unwrap();

    // Outside tests a refusal waits before it is answered: a flood of guesses slows down.
    let app = spawn_app_with(&backend, |s| {
        s.abuse.refusal_delay = Duration::from_millis(300)
    })
    .await;
    app.signup(&customer(400)).await;
    for _ in 0..5 {
        login_as(&app, EMAIL, "wrong-password", None).await;
    }
    let started = std::time::Instant::now();
    assert_eq!(
        login_as(&app, EMAIL, "password-123", None).await.status(),
        429
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    app.shutdown().await.unwrap();
}

async fn a_bcrypt_row_is_upgraded_to_argon2id_on_login(backend: Backend) {
    let database = TestDatabase::fresh(&backend).await;
    let bcrypt_app = spawn_app_on(&database, |_| {}).await;
    let (access, _) = bcrypt_app.signup(&customer(410)).await;
    let id = bcrypt_app.customer_of(&access);
    bcrypt_app.shutdown().await.unwrap();
    let stored = || {
        let database = database.clone();
        async move {
            database
                .query(&format!(
                    "SELECT bcrypted_password FROM customers WHERE id = {id}"
                ))
                .await[0][0]
                .clone()
                .unwrap()
        }
    };
    assert!(stored().await.starts_with("$2a$10$"));

    let app = spawn_app_on(&database, |s| {
        s.password.hash = Algorithm::Argon2id;
        s.password.argon2_memory_kib = 1024;
        s.password.argon2_iterations = 1;
    })
    .await;
    app.login("ming410@example.com", "password-123").await;
    let upgraded = poll_until(stored, |hash| hash.starts_with("$argon2id$")).await;
    assert!(
        upgraded.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
        "upgraded after the login: {upgraded}"
    );
    app.login("ming410@example.com", "password-123").await;
    assert_msg(
        login_as(&app, "ming410@example.com", "password-124", None).await,
        401,
        "authentication failed",
    )
    .await;
    assert_eq!(
        verifications(&app, "argon2id"),
        2,
        "the new hash is what is checked now"
    );
    assert!(
        app.scrape()
            .await
            .contains(r#"account_password_rehashes_total{from="bcrypt",to="argon2id"} 1"#)
    );
    // New passwords are Argon2id.
    let (access, _) = app.signup(&customer(411)).await;
    let id = app.customer_of(&access);
    let rows = database
        .query(&format!(
            "SELECT bcrypted_password FROM customers WHERE id = {id}"
        ))
        .await;
    assert!(rows[0][0].as_deref().unwrap().starts_with("$argon2id$"));
    app.shutdown().await.unwrap();
}

/// Two replicas count failures together through Redis; while Redis is unreachable each
/// counts for itself, never "no limit".
async fn replicas_share_counts_through_redis_and_fall_back_without_it(backend: Backend) {
    let Some((redis, _server)) = RedisTarget::single() else {
        return;
    };
    let proxy = TcpProxy::start(redis.addrs[0].parse().unwrap()).await;
    let via_proxy = RedisTarget {
        addrs: vec![proxy.addr.to_string()],
        password: redis.password.clone(),
    };
    let database = TestDatabase::fresh(&backend).await;
    let a = spawn_app_on(&database, |s| via_proxy.apply(s)).await;
    let b = spawn_app_on(&database, |s| via_proxy.apply(s)).await;
    a.wait_subscribed().await;
    b.wait_subscribed().await;
    let email = format!("shared{:x}@example.com", rand::random::<u32>());
    let mut body = customer(420);
    body["email"] = json!(email);
    a.signup(&body).await;
    for app in [&a, &b, &a, &b, &a] {
        assert_eq!(
            login_as(app, &email, "wrong-password", None).await.status(),
            401
        );
    }
    for app in [&a, &b] {
        assert_eq!(
            login_as(app, &email, "password-123", None).await.status(),
            429,
            "shared count"
        );
    }

    proxy.cut();
    let other = format!("fallback{:x}@example.com", rand::random::<u32>());
    body["email"] = json!(other);
    body["phone_number"] = json!("0900420420");
    b.signup(&body).await;
    for _ in 0..5 {
        assert_eq!(
            login_as(&a, &other, "wrong-password", None).await.status(),
            401
        );
    }
    assert_eq!(
        login_as(&a, &other, "password-123", None).await.status(),
        429,
        "the replica counts for itself while Redis is away"
    );
    assert_eq!(
        login_as(&b, &other, "password-123", None).await.status(),
        200,
        "its own count"
    );
    proxy.restore().await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// Behind a trusted proxy, each client address has its own count; from anyone else a
/// forged `X-Forwarded-For` changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_count_only_behind_trusted_proxies() {
    let trusting = spawn_app_with(&Backend::Sqlite, |s| {
        s.http.trusted_proxies = vec![saga_account::domain::IpNet::parse("127.0.0.1/32").unwrap()];
    })
    .await;
    trusting.signup(&customer(400)).await;
    for _ in 0..5 {
        assert_eq!(
            login_as(&trusting, EMAIL, "wrong", Some("198.51.100.1"))
                .await
                .status(),
            401
        );
    }
    assert_eq!(
        login_as(&trusting, EMAIL, "password-123", Some("198.51.100.1"))
            .await
            .status(),
        429
    );
    assert_eq!(
        login_as(&trusting, EMAIL, "password-123", Some("198.51.100.2"))
            .await
            .status(),
        200,
        "another client behind the proxy"
    );
    let (access, _) = trusting.login(EMAIL, "password-123").await;
    let sessions = trusting.get_json("/info/sessions", &access).await;
    assert!(
        sessions["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["client_ip"] == "198.51.100.2"),
        "{sessions}"
    );
    trusting.shutdown().await.unwrap();

    let untrusting = spawn_app(&Backend::Sqlite).await;
    untrusting.signup(&customer(400)).await;
    for n in 0..5 {
        let forged = format!("203.0.113.{n}");
        assert_eq!(
            login_as(&untrusting, EMAIL, "wrong", Some(&forged))
                .await
                .status(),
            401
        );
    }
    assert_eq!(
        login_as(&untrusting, EMAIL, "password-123", Some("203.0.113.99"))
            .await
            .status(),
        429,
        "the forged addresses were one client: the peer"
    );
    untrusting.shutdown().await.unwrap();
}

/// Unknown emails cost one verification, like a wrong password; with uniform errors they
/// also answer alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_emails_look_like_wrong_passwords() {
    let app = spawn_app_with(&Backend::Sqlite, |s| s.abuse.uniform_errors = true).await;
    app.signup(&customer(430)).await;
    let before = verifications(&app, "bcrypt");
    assert_msg(
        login_as(&app, "nobody@example.com", "password-123", None).await,
        401,
        "authentication failed",
    )
    .await;
    assert_msg(
        login_as(&app, "ming430@example.com", "wrong-password", None).await,
        401,
        "authentication failed",
    )
    .await;
    assert_eq!(
        verifications(&app, "bcrypt"),
        before + 2,
        "one verification each"
    );
    app.login("ming430@example.com", "password-123").await;
    // An inactive customer is told so only with the right password.
    let (access, _) = app.login("ming430@example.com", "password-123").await;
    app.deactivate(app.customer_of(&access)).await;
    assert_msg(
        login_as(&app, "ming430@example.com", "wrong-password", None).await,
        401,
        "authentication failed",
    )
    .await;
    assert_msg(
        login_as(&app, "ming430@example.com", "password-123", None).await,
        401,
        "customer inactive",
    )
    .await;
    app.shutdown().await.unwrap();
}

/// `SIGNUP_MAX_PER_IP_PER_HOUR` and `PASSWORD_MIN_SCORE`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_limit_and_password_strength() {
    let app = spawn_app_with(&Backend::Sqlite, |s| {
        s.abuse.signup_max_per_ip_per_hour = 3;
        s.abuse.min_password_score = 3;
    })
    .await;
    let weak = customer(440);
    assert_msg(
        app.post("/auth/signup", &weak).await,
        400,
        "password too weak",
    )
    .await;
    // The customer's own email counts against the password.
    let mut own = customer(440);
    own["password"] = json!("ming440@example.com");
    assert_msg(
        app.post("/auth/signup", &own).await,
        400,
        "password too weak",
    )
    .await;
    let mut strong = customer(441);
    strong["password"] = json!("correct horse battery staple vortex");
    let (access, _) = app.signup(&strong).await;
    let change = json!({"current_password": "correct horse battery staple vortex", "new_password": "password-123"});
    assert_msg(
        app.call(Method::PUT, "/info/password", Some(&access), Some(&change))
            .await,
        400,
        "password too weak",
    )
    .await;
    let response = app.post("/auth/signup", &customer(442)).await;
    assert_eq!(
        response.status(),
        429,
        "the fourth signup attempt of the hour from one address"
    );
    assert!(response.headers().contains_key("retry-after"));
    app.shutdown().await.unwrap();
}

crate::server_tests!(replicas_share_counts_through_redis_and_fall_back_without_it,);
