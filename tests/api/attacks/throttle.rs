//! Rules 15.4-15.6 and the bursts of findings 8 and 9: every password check throttled, an
//! account ceiling over many addresses, IPv6 counted per /64, refusals that cost nothing,
//! and bursts of right logins and of cheap reads served whole.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;

use crate::{backend_tests, helpers::*, redis_harness::RedisTarget};

backend_tests!(
    every_password_check_is_throttled_per_customer,
    an_account_ceiling_holds_over_many_addresses,
    fifty_concurrent_right_logins_all_succeed,
);

const PASSWORD: &str = "password-123";

fn verifications(app: &TestApp) -> u64 {
    app.metrics
        .hash_duration
        .with_label_values(&["verify", "bcrypt"])
        .get_sample_count()
}

fn trusting_loopback(s: &mut saga_account::config::Settings) {
    s.http.trusted_proxies = vec![saga_account::domain::IpNet::parse("127.0.0.1/32").unwrap()];
}

/// Rule 15.4: a stolen session is no password oracle. Wrong current passwords are counted
/// per customer; once locked, the change and the deletion answer 429 before any hashing,
/// while the customer's logins (a count of their own) go on.
async fn every_password_check_is_throttled_per_customer(backend: Backend) {
    let app = spawn_app(&backend).await;
    let (access, _) = app.signup(&customer(600)).await;
    let wrong = json!({"current_password": "not-my-password", "new_password": "new-password-456"});
    for _ in 0..5 {
        assert_msg(
            app.call(Method::PUT, "/info/password", Some(&access), Some(&wrong))
                .await,
            401,
            "authentication failed",
        )
        .await;
    }
    let verified = verifications(&app);
    let right = json!({"current_password": PASSWORD, "new_password": "new-password-456"});
    let response = app
        .call(Method::PUT, "/info/password", Some(&access), Some(&right))
        .await;
    assert_eq!(response.headers()["retry-after"], "60");
    assert_msg(response, 429, "too many attempts").await;
    let response = app
        .call(
            Method::DELETE,
            "/info/account",
            Some(&access),
            Some(&json!({"password": PASSWORD})),
        )
        .await;
    assert_msg(response, 429, "too many attempts").await;
    assert_eq!(verifications(&app), verified, "no hashing while locked");
    // The password is unchanged and logs in; the account is still there.
    app.login(&email_of(600), PASSWORD).await;
    assert_eq!(
        app.get_auth("/info/person", &access).await.status(),
        200,
        "nothing changed"
    );
    let text = app.scrape().await;
    assert!(
        text.contains(r#"account_login_throttled_total{limit="customer"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"account_login_lockouts_total{limit="customer"} 1"#),
        "{text}"
    );
    app.shutdown().await.unwrap();
}

/// Rule 15.5: guesses spread over many addresses still stop at the account's ceiling; an
/// IPv6 client is one client per /64.
async fn an_account_ceiling_holds_over_many_addresses(backend: Backend) {
    let app = spawn_app_with(&backend, |s| {
        trusting_loopback(s);
        s.abuse.login_max_failures_per_account = 10;
    })
    .await;
    app.signup(&customer(601)).await;
    let email = email_of(601);
    // 12 addresses, one guess each: the first 10 are checked, then the account is locked.
    let mut statuses = Vec::new();
    for n in 0..12 {
        let from = format!("198.51.100.{n}");
        statuses.push(
            login_from(&app, &email, "wrong", &from)
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses[..10], [401; 10], "{statuses:?}");
    assert_eq!(statuses[10..], [429; 2], "{statuses:?}");
    let response = login_from(&app, &email, PASSWORD, "203.0.113.7").await;
    assert_eq!(response.status(), 429, "locked from every address");
    let text = app.scrape().await;
    assert!(
        text.contains(r#"account_login_lockouts_total{limit="account"} 1"#),
        "{text}"
    );
    app.shutdown().await.unwrap();

    // Every address of one /64 is one client: five guesses from five of its addresses
    // lock the pair for the whole /64, not for the next /64.
    let app = spawn_app_with(&backend, trusting_loopback).await;
    app.signup(&customer(602)).await;
    let email = email_of(602);
    for n in 1..=5 {
        let from = format!("2001:db8:1:2::{n:x}");
        assert_eq!(login_from(&app, &email, "wrong", &from).await.status(), 401);
    }
    let same_net = login_from(&app, &email, PASSWORD, "2001:db8:1:2:ffff::99").await;
    assert_eq!(same_net.status(), 429, "the same /64");
    let next_net = login_from(&app, &email, PASSWORD, "2001:db8:1:3::1").await;
    assert_eq!(next_net.status(), 200, "another /64");
    app.shutdown().await.unwrap();
}

/// Rule 15.6 and finding 8: attempts beyond the pair's budget wait for the outcome of
/// those in flight instead of being refused, with the counters in memory and in Redis.
async fn fifty_concurrent_right_logins_all_succeed(backend: Backend) {
    let redis = RedisTarget::single();
    let mut targets = vec![None];
    if let Some((target, _)) = &redis {
        targets.push(Some(target.clone()));
    }
    for target in targets {
        let app = spawn_app_with(&backend, |s| {
            if let Some(target) = &target {
                target.apply(s);
            }
        })
        .await;
        let mut body = customer(603);
        body["email"] = json!(format!("burst{:x}@example.com", rand::random::<u32>()));
        app.signup(&body).await;
        let email = body["email"].as_str().unwrap().to_owned();
        let logins = (0..50).map(|_| {
            app.client
                .post(app.url("/auth/login"))
                .json(&json!({"email": email, "password": PASSWORD}))
                .send()
        });
        let statuses: Vec<u16> = join_all(logins)
            .await
            .into_iter()
            .map(|r| r.unwrap().status().as_u16())
            .collect();
        assert_eq!(statuses, vec![200; 50], "redis: {}", target.is_some());
        // And the limit still holds against wrong ones sent at once: no more than 5 checked.
        let before = verifications(&app);
        let guesses = (0..30).map(|_| {
            app.client
                .post(app.url("/auth/login"))
                .json(&json!({"email": email, "password": "wrong"}))
                .send()
        });
        let statuses: Vec<u16> = join_all(guesses)
            .await
            .into_iter()
            .map(|r| r.unwrap().status().as_u16())
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 401).count(),
            5,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 429).count(),
            25,
            "{statuses:?}"
        );
        assert_eq!(verifications(&app) - before, 5);
        app.shutdown().await.unwrap();
    }
}

/// Rule 15.6: refusals, even held by a refusal delay, take no slot of the load shedder;
/// another customer is served while a flood of locked-out logins waits for its answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refusals_never_sheds_another_customer() {
    let app = spawn_app_with(&Backend::Sqlite, |s| {
        s.abuse.refusal_delay = Duration::from_millis(1500);
        s.http.max_concurrent_requests = 4;
        s.http.max_queue_wait = Duration::from_millis(200);
    })
    .await;
    app.signup(&customer(604)).await;
    let (other, _) = app.signup(&customer(605)).await;
    let victim = email_of(604);
    for _ in 0..5 {
        let response = app
            .post(
                "/auth/login",
                &json!({"email": victim, "password": "wrong"}),
            )
            .await;
        assert_eq!(response.status(), 401);
    }
    let started = Instant::now();
    let flood: Vec<_> = (0..200)
        .map(|_| {
            let request = app
                .client
                .post(app.url("/auth/login"))
                .json(&json!({"email": victim, "password": "wrong"}))
                .send();
            tokio::spawn(request)
        })
        .collect();
    // The flood has been let in and is being held; the shedder's 4 slots are free.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..5 {
        let response = app.get_auth("/info/person", &other).await;
        assert_eq!(response.status(), 200, "another customer is served");
    }
    for request in flood {
        let response = request.await.unwrap().unwrap();
        assert_eq!(response.status(), 429);
    }
    assert!(started.elapsed() >= Duration::from_millis(1500), "held");
    app.shutdown().await.unwrap();
}

/// Finding 9: 2,000 concurrent cached reads are a burst, not a flood: all answered 200.
/// They are sent at once on connections opened beforehand, so that the service sees them
/// together, to a replica of 4 slots. (In one process the service drains them faster than
/// they arrive; the shedder's rule itself is tested in `transport::http::limits`.)
async fn a_burst_of_cached_reads_is_served_whole(backend: Backend) {
    let app = spawn_app_with(&backend, |s| {
        s.http.max_concurrent_requests = 4;
    })
    .await;
    let (access, _) = app.signup(&customer(606)).await;
    assert_eq!(app.get_auth("/info/person", &access).await.status(), 200);
    let addr = app.base.trim_start_matches("http://").to_owned();
    let request = format!(
        "GET /api/account/info/person HTTP/1.1\r\nHost: {addr}\r\nAuthorization: bearer {access}\r\nConnection: close\r\n\r\n"
    );
    let mut connections = Vec::new();
    for _ in 0..2000 {
        connections.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let reads = connections.into_iter().map(|mut stream| {
        let request = request.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.unwrap();
            String::from_utf8_lossy(&answer)
                .chars()
                .skip(9)
                .take(3)
                .collect::<String>()
        })
    });
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for read in join_all(reads).await {
        *statuses.entry(read.unwrap()).or_default() += 1;
    }
    assert_eq!(statuses, [("200".to_owned(), 2000)].into(), "{statuses:?}");
    assert_eq!(app.metrics.http_shed.get(), 0, "nothing shed");
    app.shutdown().await.unwrap();
}

crate::server_tests!(a_burst_of_cached_reads_is_served_whole,);
