//! Measurements for BENCHMARKS.md, not checks (ignored by default; run in release):
//!
//! ```sh
//! cargo test --release --test api mail_bench -- --ignored --nocapture --test-threads 1
//! ```
//!
//! - forgot-password latency for known and unknown emails, interleaved;
//! - outbox throughput to the in-process SMTP sink, and the delay from request to delivery.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{name:>8}: n={} mean={:?} p50={:?} p90={:?} p99={:?}",
        samples.len(),
        mean,
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        percentile(&samples, 0.99)
    );
    percentile(&samples, 0.5)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for BENCHMARKS.md"]
async fn mail_bench_forgot_latency_known_vs_unknown() {
    const N: usize = 2000;
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(&Backend::Sqlite, |s| {
        s.mail.smtp_url = saga_account::service::mail::SmtpUrl::parse(&url);
        s.mail_limits.per_email_per_hour = 0;
    })
    .await;
    let known: Vec<String> = {
        let mut v = Vec::new();
        for n in 0..20 {
            let body = customer(9000 + n);
            app.signup(&body).await;
            v.push(body["email"].as_str().unwrap().to_owned());
        }
        v
    };
    let client = reqwest::Client::new();
    let url = app.url("/auth/password/forgot");
    let (mut k, mut u) = (Vec::new(), Vec::new());
    // Warm-up, then interleaved so that both see the same machine state.
    for i in 0..(N + 200) {
        let (email, known_one) = if i % 2 == 0 {
            (known[i % known.len()].clone(), true)
        } else {
            (format!("nobody{i}@example.com"), false)
        };
        let start = Instant::now();
        let r = client
            .post(&url)
            .json(&json!({"email": email}))
            .send()
            .await
            .unwrap();
        let took = start.elapsed();
        assert_eq!(r.status(), 202);
        if i >= 200 {
            if known_one {
                k.push(took)
            } else {
                u.push(took)
            }
        }
    }
    let known_p50 = report("known", k);
    let unknown_p50 = report("unknown", u);
    println!(
        "p50 ratio known/unknown = {:.3}",
        known_p50.as_secs_f64() / unknown_p50.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for BENCHMARKS.md"]
async fn mail_bench_outbox_throughput() {
    // Every backend configured, one after the other, in one run.
    let servers = [
        std::env::var("TEST_MYSQL_DSN").ok().map(Backend::MySql),
        std::env::var("TEST_POSTGRES_DSN")
            .ok()
            .map(Backend::Postgres),
    ];
    for backend in std::iter::once(Backend::Sqlite).chain(servers.into_iter().flatten()) {
        outbox_throughput(&backend).await;
    }
}

async fn outbox_throughput(backend: &Backend) {
    const N: u32 = 1000;
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let database = TestDatabase::fresh(backend).await;
    let app = spawn_app_on(&database, |s| {
        s.mail.smtp_url = saga_account::service::mail::SmtpUrl::parse(&url);
        s.mail_limits.per_email_per_hour = 0;
        // Mails queued while the sender is asleep: the throughput of draining a backlog.
        s.mail.poll = Duration::from_secs(3600);
    })
    .await;
    let mut tokens = Vec::new();
    for n in 0..N {
        tokens.push(app.signup(&customer(20_000 + n)).await.0);
    }
    // Steady arrivals: each request's mail goes out while the next ones come in.
    let start = Instant::now();
    let requests = tokens.iter().map(|t| {
        app.call(
            reqwest::Method::POST,
            "/info/email/verification",
            Some(t),
            None,
        )
    });
    futures_util::stream::iter(requests)
        .buffer_unordered(16)
        .for_each(|r| async move { assert_eq!(r.status(), 202) })
        .await;
    let queued = start.elapsed();
    let delivered = poll_within(
        Duration::from_secs(300),
        async || sink.mails().await.len(),
        |n| *n >= N as usize,
    )
    .await;
    let all = start.elapsed();
    assert_eq!(delivered, N as usize);
    println!(
        "{}: {N} verification mails requested in {queued:?}, all delivered after {all:?}: {:.0} mails/s",
        backend.name(),
        N as f64 / all.as_secs_f64()
    );
    let scrape = app.scrape().await;
    for line in scrape.lines().filter(|l| {
        l.starts_with("account_mail_delivery_delay_seconds") && l.contains("email_verification")
    }) {
        println!("{line}");
    }
    app.shutdown().await.unwrap();
}

use futures_util::StreamExt;
