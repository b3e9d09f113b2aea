//! Rule 15.10, no stale read after a write: once a write to a customer has answered on one
//! replica, no replica serves the older row later than 1 s after, whatever reads raced it.
//! Readers hammer both replicas while one of them writes a sequence of values; every read
//! that began more than 1 s after a write answered must show that write or a later one.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::json;

use crate::{helpers::*, redis_harness::RedisTarget};

const WRITES: u32 = 30;
const READERS_PER_REPLICA: usize = 6;
const BOUND: Duration = Duration::from_secs(1);

/// What a reader saw: when its request began, on which replica, the value's number.
type Seen = Arc<Mutex<Vec<(Instant, usize, u32)>>>;

fn number_of(first_name: &str) -> u32 {
    first_name.trim_start_matches('V').parse().unwrap_or(0)
}

async fn hammer(a: TestApp, b: TestApp) {
    let tag: u32 = rand::random();
    let email = format!("stale{tag:x}@example.com");
    let mut body = customer(600);
    body["email"] = json!(email);
    body["firstname"] = json!("V0");
    body["phone_number"] = json!(format!("+1{tag:010}"));
    let (token, _) = a.signup(&body).await;
    let apps = Arc::new([a, b]);
    let seen: Seen = Arc::default();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for replica in [0usize, 1] {
        for _ in 0..READERS_PER_REPLICA {
            let (apps, seen, done, token) =
                (apps.clone(), seen.clone(), done.clone(), token.clone());
            readers.push(tokio::spawn(async move {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let began = Instant::now();
                    let response = apps[replica].get_auth("/info/person", &token).await;
                    assert_eq!(response.status(), 200);
                    let value: serde_json::Value = response.json().await.unwrap();
                    let n = number_of(value["firstname"].as_str().unwrap());
                    seen.lock().unwrap().push((began, replica, n));
                }
            }));
        }
    }
    // Writes on the first replica, each answered before the next.
    let mut answered = Vec::new();
    for n in 1..=WRITES {
        let new = json!({"firstname": format!("V{n}"), "lastname": "Hsu", "email": email});
        assert_eq!(
            apps[0]
                .put_auth("/info/person", &token, &new)
                .await
                .status(),
            200
        );
        answered.push((Instant::now(), n));
        // Let reads on both replicas race the next write.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let last = answered.last().unwrap().0;
    // Keep reading until a whole bound has passed after the last write.
    poll_within(
        BOUND * 3,
        async || Instant::now(),
        |now| *now > last + BOUND + Duration::from_millis(200),
    )
    .await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    let seen = seen.lock().unwrap();
    let mut stale = Vec::new();
    for (began, replica, n) in seen.iter() {
        // The latest write that had answered more than the bound before this read began.
        let due = answered
            .iter()
            .filter(|(at, _)| *at + BOUND < *began)
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0);
        if *n < due {
            stale.push((replica, *n, due, began.duration_since(last)));
        }
    }
    assert!(
        seen.iter().any(|(began, ..)| *began > last + BOUND),
        "reads after the bound"
    );
    assert!(
        stale.is_empty(),
        "{} of {} reads were older than a write answered over 1 s before, e.g. {:?}",
        stale.len(),
        seen.len(),
        stale.first()
    );
}

/// Two replicas without Redis on one SQLite file: only the database connects them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_stale_read_after_a_write_on_two_replicas_without_redis() {
    let database = TestDatabase::fresh(&Backend::Sqlite).await;
    let a = spawn_app_on(&database, |_| {}).await;
    let b = spawn_app_on(&database, |_| {}).await;
    hammer(a, b).await;
}

/// Two replicas on MariaDB (when configured) and one Redis.
async fn no_stale_read_after_a_write_on_two_replicas_with_redis(backend: Backend) {
    let Some((redis, _server)) = RedisTarget::single() else {
        return;
    };
    let database = TestDatabase::fresh(&backend).await;
    let a = spawn_app_on(&database, |s| redis.apply(s)).await;
    let b = spawn_app_on(&database, |s| redis.apply(s)).await;
    a.wait_subscribed().await;
    b.wait_subscribed().await;
    hammer(a, b).await;
}

crate::server_tests!(no_stale_read_after_a_write_on_two_replicas_with_redis,);
