//! Logins under attack, and the timing of failed logins (SPEC section 10).
//!
//! Every client here sends `X-Forwarded-For`, so the service must trust the tool's address
//! (`TRUSTED_PROXIES=127.0.0.1/32`): each legitimate worker is a client address of its own,
//! the attackers one address between them, as they would be behind the shop's proxy.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use serde_json::json;

use crate::{
    clients::HttpConnection,
    scenarios::{Customer, Load, Scenario, Target},
    stats::{Recorder, Report},
};

/// What the attackers do.
#[derive(Debug, Clone, Copy)]
pub enum Attack {
    /// Wrong passwords for one account.
    OneAccount,
    /// Wrong passwords for many accounts (made-up addresses) from one address.
    Spray,
}

const ATTACKERS: usize = 200;

/// Legitimate logins, each worker for its own customer with the right password.
async fn legitimate(
    target: Target,
    customers: Arc<Vec<Customer>>,
    workers: usize,
    duration: Duration,
) -> anyhow::Result<Report> {
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let customers = customers.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = HttpConnection::open(target.http).await?;
            let customer = &customers[w % customers.len()];
            let address = format!("198.51.100.{}", 1 + w % 250);
            let body = Bytes::from(
                json!({"email": customer.email, "password": customer.password}).to_string(),
            );
            let mut recorder = Recorder::new();
            while Instant::now() < deadline {
                let begun = Instant::now();
                let (status, _) = conn
                    .call_with(
                        "POST",
                        "/api/account/auth/login",
                        None,
                        Some(body.clone()),
                        &[("x-forwarded-for", &address)],
                    )
                    .await?;
                if status == 200 {
                    recorder.ok(begun.elapsed());
                } else {
                    recorder.error(|| format!("a legitimate login answered {status}"));
                }
            }
            anyhow::Ok(recorder)
        }));
    }
    let mut total = Recorder::new();
    for task in tasks {
        total.merge(task.await??);
    }
    Ok(Report::from("legitimate logins", total, duration))
}

/// The attackers: as fast as they can, until the deadline. Every answer is what they get
/// (401, 404, 429, 503); only a 200 would be an error.
async fn attackers(
    target: Target,
    victim: String,
    attack: Attack,
    duration: Duration,
) -> anyhow::Result<Report> {
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for a in 0..ATTACKERS {
        let victim = victim.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = HttpConnection::open(target.http).await?;
            let mut recorder = Recorder::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let email = match attack {
                    Attack::OneAccount => victim.clone(),
                    Attack::Spray => format!("spray-{a}-{n}@attack.test"),
                };
                let body = Bytes::from(
                    json!({"email": email, "password": format!("guess-{n}")}).to_string(),
                );
                let begun = Instant::now();
                let (status, _) = conn
                    .call_with(
                        "POST",
                        "/api/account/auth/login",
                        None,
                        Some(body),
                        &[("x-forwarded-for", "203.0.113.66")],
                    )
                    .await?;
                if status == 200 {
                    recorder.error(|| "a guess logged in".to_owned());
                } else {
                    recorder.ok(begun.elapsed());
                }
            }
            anyhow::Ok(recorder)
        }));
    }
    let mut total = Recorder::new();
    for task in tasks {
        total.merge(task.await??);
    }
    Ok(Report::from("attackers' guesses", total, duration))
}

/// Legitimate logins and `Auth` alone, then while 200 attackers run `attack`; every line
/// is printed with the figure it compares with.
pub async fn login_under_attack(
    target: Target,
    customers: Arc<Vec<Customer>>,
    load: &Load,
    hash_threads: usize,
    attack: Attack,
    print: &mut impl FnMut(&Report, Option<&Report>),
) -> anyhow::Result<()> {
    anyhow::ensure!(
        customers.len() >= 2,
        "needs two customers: a victim and the others"
    );
    let victim = customers[0].email.clone();
    let legit_customers = Arc::new(customers[1..].to_vec());
    let workers = hash_threads * 2;
    // `Auth` at a steady rate beside the logins (--rate, default 2,000/s): at full speed it
    // would take the CPU from the (lower-priority) hashing threads, by design. Its tokens
    // are the victim's, whose sessions the legitimate logins never evict.
    let auth_load = Load {
        concurrency: 8,
        rate: Some(load.rate.unwrap_or(2_000.0)),
        ..load.clone()
    };
    let auth_customers = Arc::new(vec![customers[0].clone()]);
    let (alone, auth_alone) = tokio::join!(
        legitimate(target, legit_customers.clone(), workers, load.duration),
        crate::scenarios::run(
            "auth (beside logins)",
            Scenario::Auth,
            target,
            auth_customers.clone(),
            &auth_load
        ),
    );
    let (alone, auth_alone) = (alone?, auth_alone?);
    print(&alone, None);
    print(&auth_alone, None);
    let (attacked, auth_attacked, guesses) = tokio::join!(
        legitimate(target, legit_customers, workers, load.duration),
        crate::scenarios::run(
            "auth (under attack)",
            Scenario::Auth,
            target,
            auth_customers,
            &auth_load
        ),
        attackers(target, victim, attack, load.duration),
    );
    print(&attacked?, Some(&alone));
    print(&auth_attacked?, Some(&auth_alone));
    print(&guesses?, None);
    Ok(())
}

/// Failed logins one at a time: unknown emails and wrong passwords, alternating, so that
/// both see the same machine. Throttling must be off for this (`LOGIN_MAX_FAILURES=0`).
pub async fn login_timing(
    target: Target,
    customers: Arc<Vec<Customer>>,
    requests: u64,
    print: &mut impl FnMut(&Report, Option<&Report>),
) -> anyhow::Result<()> {
    let mut conn = HttpConnection::open(target.http).await?;
    let (mut unknown, mut wrong) = (Recorder::new(), Recorder::new());
    let started = Instant::now();
    for n in 0..requests {
        let customer = &customers[(n as usize) % customers.len()];
        for known in [false, true] {
            let email = if known {
                customer.email.clone()
            } else {
                format!("nobody-{n}@timing.test")
            };
            let body =
                Bytes::from(json!({"email": email, "password": "not-the-password"}).to_string());
            let begun = Instant::now();
            let (status, _) = conn
                .call("POST", "/api/account/auth/login", None, Some(body))
                .await?;
            let recorder = if known { &mut wrong } else { &mut unknown };
            if matches!(status.as_u16(), 401 | 404) {
                recorder.ok(begun.elapsed());
            } else {
                recorder.error(|| format!("a failed login answered {status}"));
            }
        }
    }
    let elapsed = started.elapsed();
    let wrong = Report::from("login, wrong password", wrong, elapsed);
    let unknown = Report::from("login, unknown email", unknown, elapsed);
    print(&wrong, None);
    print(&unknown, None);
    println!(
        "    median: unknown email {:.2} ms, wrong password {:.2} ms: the unknown email takes {:.0}% of the time",
        unknown.p50,
        wrong.p50,
        100.0 * unknown.p50 / wrong.p50.max(1e-9)
    );
    Ok(())
}
