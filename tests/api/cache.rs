//! The two-tier cache against real Redis: tiers, coalescing, invalidation across two
//! replicas, faults. Replicas of one test share a database and a Redis.

use std::time::{Duration, Instant};

use saga_account::{domain::CustomerId, storage::cache::CacheKey};
use serde_json::{Value, json};

use crate::{
    helpers::*,
    redis_harness::{RedisServer, RedisTarget},
};

/// Two replicas on one database (each server backend; SQLite without one) and one Redis.
async fn replicas(redis: &RedisTarget, backend: &Backend) -> (TestApp, TestApp) {
    let database = TestDatabase::fresh(backend).await;
    let first = spawn_app_on(&database, |s| redis.apply(s)).await;
    let second = spawn_app_on(&database, |s| redis.apply(s)).await;
    first.wait_subscribed().await;
    second.wait_subscribed().await;
    (first, second)
}

/// A customer no other test uses (tests share CI's Redis).
fn unique_customer() -> Value {
    let n: u32 = rand::random_range(0..1_000_000);
    let tag: u64 = rand::random();
    json!({
        "password": "password-123",
        "firstname": "Cache",
        "lastname": "Test",
        "email": format!("c{tag:x}@cache.example.com"),
        "address": "1 Cache Road",
        "phone_number": format!("+{tag:016x}")[..15].to_owned() + &n.to_string()[..1],
    })
}

fn db_reads(app: &TestApp, operation: &str) -> u64 {
    app.metrics
        .db_query_duration
        .with_label_values(&[operation])
        .get_sample_count()
}

fn hits(app: &TestApp, tier: &str) -> u64 {
    app.metrics.cache_hits.with_label_values(&[tier]).get()
}

async fn person(app: &TestApp, token: &str) -> Value {
    let response = app.get_auth("/info/person", token).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Polls `read` until it returns `expected`; returns how long that took.
async fn until_seen(expected: &Value, read: impl AsyncFnMut() -> Value) -> Duration {
    let start = Instant::now();
    let got = poll_until(read, |got| got == expected).await;
    assert_eq!(&got, expected, "not seen within 5 s");
    start.elapsed()
}

async fn reads_go_local_then_redis_then_database(backend: Backend) {
    let Some((redis, _server)) = RedisTarget::single() else {
        return;
    };
    let (a, b) = replicas(&redis, &backend).await;
    let (token, _) = a.signup(&unique_customer()).await;

    person(&a, &token).await;
    assert_eq!(
        db_reads(&a, "personal_info"),
        1,
        "cold read loads from the database"
    );
    person(&a, &token).await;
    assert_eq!(db_reads(&a, "personal_info"), 1);
    assert_eq!(
        hits(&a, "local"),
        1,
        "second read on the same replica is local"
    );

    person(&b, &token).await;
    assert_eq!(
        db_reads(&b, "personal_info"),
        0,
        "the other replica reads Redis"
    );
    assert_eq!(hits(&b, "redis"), 1);

    // The entry has the Go shape and a TTL of REDIS_EXPIRATION_SECONDS + 0-9 s.
    use fred::prelude::KeysInterface as _;
    let client = redis.client().await;
    let key = CacheKey::Personal(a.customer_of(&token)).render();
    let raw: String = client.get(&key).await.unwrap();
    let stored: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(stored["FirstName"], "Cache");
    let ttl: i64 = client.ttl(&key).await.unwrap();
    assert!((890..=909).contains(&ttl), "ttl {ttl}");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

async fn coalescing_counts(redis: RedisTarget) {
    let (a, b) = replicas(
        &redis,
        &Backend::server_or_sqlite("mysql").unwrap_or(Backend::Sqlite),
    )
    .await;
    let (token, _) = a.signup(&unique_customer()).await;
    let id = a.customer_of(&token);
    // 200 clients with open connections, released together, so that the reads really overlap.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(200));
    let mut tasks = Vec::new();
    for i in 0..200 {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let (token, barrier) = (token.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let warm = client
                .request(reqwest::Method::OPTIONS, format!("{base}/"))
                .send()
                .await
                .unwrap();
            assert_eq!(warm.status(), 204);
            barrier.wait().await;
            let url = format!("{base}/api/account/info/person");
            client
                .get(url)
                .header("authorization", format!("bearer {token}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let statuses = futures_util::future::join_all(tasks).await;
    let statuses: Vec<u16> = statuses.into_iter().map(Result::unwrap).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let loads = db_reads(&a, "personal_info") + db_reads(&b, "personal_info");
    let coalesced = |app: &TestApp, level: &str| {
        app.metrics
            .cache_coalesced
            .with_label_values(&[level])
            .get()
    };
    eprintln!(
        "200 concurrent cold reads of customer {id} over two replicas: {loads} database read(s); \
         coalesced waits local {} + {}, across replicas {} + {}",
        coalesced(&a, "local"),
        coalesced(&b, "local"),
        coalesced(&a, "redis"),
        coalesced(&b, "redis"),
    );
    assert_eq!(
        loads, 1,
        "exactly one database read for 200 concurrent reads of a cold key"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_cold_reads_over_two_replicas_make_one_database_read() {
    // A Redis of its own: an invalidation published by another test on a shared Redis
    // bumps the replicas' epoch, and a load racing it rightly keeps its value out of Redis
    // (rule 15.10), which would make a second load here.
    let Some(server) = RedisServer::start() else {
        return;
    };
    coalescing_counts(server.target()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_cold_reads_on_a_cluster_make_one_database_read() {
    let Some(redis) = RedisTarget::cluster() else {
        return;
    };
    coalescing_counts(redis).await;
}

async fn writes_are_seen_on_the_other_replica(redis: RedisTarget) {
    let (a, b) = replicas(
        &redis,
        &Backend::server_or_sqlite("mysql").unwrap_or(Backend::Sqlite),
    )
    .await;
    let (token, _) = a.signup(&unique_customer()).await;
    person(&a, &token).await;
    person(&b, &token).await;
    let tag: u32 = rand::random();
    let new = json!({"firstname": "New", "lastname": "Name", "email": format!("new{tag}@cache.example.com")});
    assert_eq!(a.put_auth("/info/person", &token, &new).await.status(), 200);
    assert_eq!(person(&a, &token).await, new, "same replica: at once");
    let delay = until_seen(&new, async || person(&b, &token).await).await;
    eprintln!("write on one replica seen on the other after {delay:?}");

    let shipping = json!({"address": "9 New Street", "phone_number": format!("9{tag}")});
    assert_eq!(
        b.put_auth("/info/shipping", &token, &shipping)
            .await
            .status(),
        200
    );
    let delay = until_seen(&shipping, async || {
        a.get_json("/info/shipping", &token).await
    })
    .await;
    eprintln!("shipping write seen on the other replica after {delay:?}");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_replica_is_seen_on_the_other() {
    let Some((redis, _server)) = RedisTarget::single() else {
        return;
    };
    writes_are_seen_on_the_other_replica(redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_replica_is_seen_on_the_other_in_a_cluster() {
    let Some(redis) = RedisTarget::cluster() else {
        return;
    };
    writes_are_seen_on_the_other_replica(redis).await;
}

async fn email_change_stops_the_old_address_and_starts_the_new_one(backend: Backend) {
    let Some((redis, _server)) = RedisTarget::single() else {
        return;
    };
    let (a, b) = replicas(&redis, &backend).await;
    let customer = unique_customer();
    let (token, _) = a.signup(&customer).await;
    let old = customer["email"].as_str().unwrap().to_owned();
    let new = format!("moved-{old}");
    let login = |email: &str| json!({"email": email, "password": "password-123"});
    // Both addresses are now cached on b: the old one positive, the new one negative.
    assert_eq!(b.post("/auth/login", &login(&old)).await.status(), 200);
    assert_eq!(b.post("/auth/login", &login(&new)).await.status(), 404);

    let update = json!({"firstname": "Cache", "lastname": "Test", "email": new});
    assert_eq!(
        a.put_auth("/info/person", &token, &update).await.status(),
        200
    );
    let (old_status, new_status) = poll_until(
        async || {
            let old_status = b.post("/auth/login", &login(&old)).await.status().as_u16();
            let new_status = b.post("/auth/login", &login(&new)).await.status().as_u16();
            (old_status, new_status)
        },
        |statuses| *statuses == (404, 200),
    )
    .await;
    assert_eq!(
        (old_status, new_status),
        (404, 200),
        "old address refused, new one accepted"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

async fn signup_after_a_failed_login_logs_in_at_once(backend: Backend) {
    let Some((redis, _server)) = RedisTarget::single() else {
        return;
    };
    let (a, b) = replicas(&redis, &backend).await;
    let customer = unique_customer();
    let login = json!({"email": customer["email"], "password": "password-123"});
    assert_eq!(b.post("/auth/login", &login).await.status(), 404);
    assert_eq!(a.post("/auth/login", &login).await.status(), 404);
    a.signup(&customer).await;
    assert_eq!(
        a.post("/auth/login", &login).await.status(),
        200,
        "same replica: at once"
    );
    let status = poll_until(
        async || b.post("/auth/login", &login).await.status().as_u16(),
        |status| *status == 200,
    )
    .await;
    assert_eq!(
        status, 200,
        "the negative entry is gone on the other replica too"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

async fn deactivation_reaches_every_replica(backend: Backend) {
    let Some((redis, _server)) = RedisTarget::single() else {
        return;
    };
    let (a, b) = replicas(&redis, &backend).await;
    let (token, refresh) = a.signup(&unique_customer()).await;
    assert_eq!(
        b.post("/auth/refresh", &json!({"refresh_token": refresh}))
            .await
            .status(),
        200
    );
    a.deactivate(a.customer_of(&token)).await;
    let response = poll_until(
        async || {
            b.post("/auth/refresh", &json!({"refresh_token": refresh}))
                .await
        },
        |response| response.status() == 401,
    )
    .await;
    assert_msg(response, 401, "customer inactive").await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// Redis down at start: the service starts and serves from the database, then connects
/// when Redis appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_without_redis_and_connects_when_it_appears() {
    let Some(mut server) = RedisServer::not_started() else {
        return;
    };
    let redis = server.target();
    let app = spawn_app_with(&Backend::Sqlite, |s| redis.apply(s)).await;
    let (token, _) = app.signup(&unique_customer()).await;
    person(&app, &token).await;
    person(&app, &token).await;
    assert_eq!(
        db_reads(&app, "personal_info"),
        2,
        "no cache can be trusted without the channel"
    );

    server.resume();
    app.wait_subscribed().await;
    person(&app, &token).await;
    person(&app, &token).await;
    assert_eq!(
        db_reads(&app, "personal_info"),
        3,
        "cached once Redis is there"
    );
    use fred::prelude::KeysInterface as _;
    let exists: i64 = redis
        .client()
        .await
        .exists(CacheKey::Personal(app.customer_of(&token)).render())
        .await
        .unwrap();
    assert_eq!(exists, 1);
    app.shutdown().await.unwrap();
}

/// Redis unreachable mid-run (its data kept, as in a network partition): reads fall back to
/// the database, writes succeed, and once Redis is back neither Redis nor any replica holds
/// the old value.
async fn write_while_redis_is_unreachable_leaves_nothing_stale(backend: Backend) {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let proxy = TcpProxy::start(format!("127.0.0.1:{}", server.port).parse().unwrap()).await;
    let via_proxy = RedisTarget {
        addrs: vec![proxy.addr.to_string()],
        password: None,
    };
    let (a, b) = replicas(&via_proxy, &backend).await;
    let (token, _) = a.signup(&unique_customer()).await;
    let id: CustomerId = a.customer_of(&token);
    let before = person(&a, &token).await;
    assert_eq!(person(&b, &token).await, before);

    proxy.cut();
    for app in [&a, &b] {
        let lost = poll_until(async || !app.cache.is_coherent(), |lost| *lost).await;
        assert!(lost, "loss of Redis noticed");
    }
    let new = json!({"firstname": "During", "lastname": "Outage", "email": format!("outage{}@cache.example.com", id)});
    let started = Instant::now();
    assert_eq!(
        a.put_auth("/info/person", &token, &new).await.status(),
        200,
        "writes still succeed"
    );
    assert_eq!(
        person(&b, &token).await,
        new,
        "reads fall back to the database"
    );
    assert_eq!(person(&a, &token).await, new);
    eprintln!(
        "write + two reads with Redis unreachable took {:?}",
        started.elapsed()
    );

    proxy.restore().await;
    a.wait_subscribed().await;
    b.wait_subscribed().await;
    assert_eq!(person(&b, &token).await, new);
    assert_eq!(person(&a, &token).await, new);
    use fred::prelude::KeysInterface as _;
    let stored: Option<String> = server
        .target()
        .client()
        .await
        .get(CacheKey::Personal(id).render())
        .await
        .unwrap();
    if let Some(stored) = stored {
        assert!(
            stored.contains("During"),
            "Redis still holds the old value: {stored}"
        );
    }
    server.stop();
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

crate::server_tests!(
    reads_go_local_then_redis_then_database,
    email_change_stops_the_old_address_and_starts_the_new_one,
    signup_after_a_failed_login_logs_in_at_once,
    deactivation_reaches_every_replica,
    write_while_redis_is_unreachable_leaves_nothing_stale,
);
