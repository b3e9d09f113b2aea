//! Crash consistency: the real binary, under concurrent signups, profile updates and
//! logouts, is killed with SIGKILL after a random number of acknowledged writes and started
//! again on the same database (and Redis), twenty times. After each restart every
//! acknowledged write is there, nothing is half-written, and what the API reads equals what
//! the database holds: no stale cache entry survived the crash.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::{Client, Method, StatusCode};
use saga_account::service::auth::{TokenCodec, TokenKind};
use serde_json::{Value, json};

use crate::{
    backend_tests,
    helpers::{Backend, SECRET, ServiceProcess, TestDatabase, now, poll_within},
};

backend_tests!(acknowledged_writes_survive_sigkill);

const KILLS: usize = 20;
const WORKERS: usize = 6;
const PASSWORD: &str = "crash-drill-password";

#[derive(Clone, Debug, PartialEq, Eq)]
struct Person {
    first: String,
    last: String,
    email: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Shipping {
    address: String,
    phone: String,
}

/// Every value written differs in every column from every other, so that a torn write
/// (some columns old, some new) matches neither.
fn person(n: u32, generation: u32) -> Person {
    Person {
        first: format!("First{n}g{generation}"),
        last: format!("Last{n}g{generation}"),
        email: format!("c{n}g{generation}@example.com"),
    }
}

fn shipping(n: u32, generation: u32) -> Shipping {
    Shipping {
        address: format!("{n} Main Street, take {generation}\nSpringfield"),
        phone: format!("+886 {n:05} {generation:05}"),
    }
}

/// What the drill knows of one customer. Each customer belongs to one worker at a time, so
/// at most one of its writes is in flight when the process dies.
#[derive(Debug)]
struct Customer {
    n: u32,
    /// Known once the signup was acknowledged (or found whole after the restart).
    id: Option<u64>,
    person: Person,
    /// A write that was sent but not acknowledged: after the restart the row holds either
    /// the acknowledged value or this one.
    person_pending: Option<Person>,
    shipping: Shipping,
    shipping_pending: Option<Shipping>,
    generation: u32,
    /// (access, refresh) of the session the worker uses.
    session: Option<(String, String)>,
    logout_pending: bool,
    /// Sessions whose logout was acknowledged: they stay revoked.
    logged_out: Vec<(String, String)>,
    /// Writes acknowledged since the last check, per kind.
    acked: Acked,
    /// Read stale after a restart (counted once).
    stale: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Acked {
    signup: u64,
    person: u64,
    shipping: u64,
    logout: u64,
}

impl Customer {
    fn new(n: u32) -> Self {
        Self {
            n,
            id: None,
            person: person(n, 0),
            person_pending: None,
            shipping: shipping(n, 0),
            shipping_pending: None,
            generation: 0,
            session: None,
            logout_pending: false,
            logged_out: Vec::new(),
            acked: Acked::default(),
            stale: false,
        }
    }

    fn signup_body(&self) -> Value {
        json!({
            "password": PASSWORD,
            "firstname": self.person.first,
            "lastname": self.person.last,
            "email": self.person.email,
            "address": self.shipping.address,
            "phone_number": self.shipping.phone,
        })
    }
}

/// The figures the lead quotes.
#[derive(Debug, Default)]
struct Counts {
    kills: usize,
    acknowledged: u64,
    found: u64,
    lost: u64,
    torn: u64,
    stale: u64,
    unacknowledged_signups_present: u64,
    unacknowledged_signups_absent: u64,
    unacknowledged_updates_applied: u64,
    unacknowledged_updates_not_applied: u64,
}

/// The figures and every failure, each described.
#[derive(Debug, Default)]
struct Report {
    counts: Counts,
    failures: Vec<String>,
}

/// The service died under the request.
#[derive(Debug)]
struct Dead;

struct Api {
    client: Client,
    base: String,
}

impl Api {
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), Dead> {
        let mut request = self
            .client
            .request(method, format!("{}/api/account{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("bearer {token}"));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|_| Dead)?;
        let status = response.status();
        // A body cut off by the kill is the kill, not an answer.
        let text = response.text().await.map_err(|_| Dead)?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn login(&self, email: &str) -> Result<(StatusCode, Option<(String, String)>), Dead> {
        let (status, body) = self
            .send(
                Method::POST,
                "/auth/login",
                None,
                Some(&json!({"email": email, "password": PASSWORD})),
            )
            .await?;
        Ok((status, tokens(&body)))
    }

    async fn person(&self, token: &str) -> Result<(StatusCode, Option<Person>), Dead> {
        let (status, body) = self
            .send(Method::GET, "/info/person", Some(token), None)
            .await?;
        let person = (status == StatusCode::OK).then(|| Person {
            first: body["firstname"].as_str().unwrap_or_default().to_owned(),
            last: body["lastname"].as_str().unwrap_or_default().to_owned(),
            email: body["email"].as_str().unwrap_or_default().to_owned(),
        });
        Ok((status, person))
    }

    async fn shipping(&self, token: &str) -> Result<(StatusCode, Option<Shipping>), Dead> {
        let (status, body) = self
            .send(Method::GET, "/info/shipping", Some(token), None)
            .await?;
        let shipping = (status == StatusCode::OK).then(|| Shipping {
            address: body["address"].as_str().unwrap_or_default().to_owned(),
            phone: body["phone_number"].as_str().unwrap_or_default().to_owned(),
        });
        Ok((status, shipping))
    }
}

fn tokens(body: &Value) -> Option<(String, String)> {
    Some((
        body["access_token"].as_str()?.to_owned(),
        body["refresh_token"].as_str()?.to_owned(),
    ))
}

fn customer_id(access: &str) -> u64 {
    TokenCodec::new(SECRET.as_bytes())
        .verify(access, TokenKind::Access, now())
        .expect("our own access token")
        .customer
        .0
}

/// One worker's writes until the service dies under it. Anything but the expected answer
/// is a failure of the drill.
async fn work(
    api: Api,
    customers: &mut Vec<Customer>,
    mut next_n: impl FnMut() -> u32,
    acked: &AtomicU64,
    failures: &Mutex<Vec<String>>,
) {
    let fail = |what: String| failures.lock().unwrap().push(what);
    loop {
        let live: Vec<usize> = (0..customers.len())
            .filter(|&i| customers[i].id.is_some())
            .collect();
        if live.is_empty() || rand::random_range(0..8) == 0 {
            let customer = Customer::new(next_n());
            let body = customer.signup_body();
            customers.push(customer);
            let Ok((status, body)) = api
                .send(Method::POST, "/auth/signup", None, Some(&body))
                .await
            else {
                return;
            };
            let customer = customers.last_mut().unwrap();
            if status != StatusCode::CREATED {
                return fail(format!("signup of {}: {status} {body}", customer.n));
            }
            let session = tokens(&body).unwrap();
            customer.id = Some(customer_id(&session.0));
            customer.session = Some(session);
            customer.acked.signup += 1;
            acked.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        let customer = &mut customers[live[rand::random_range(0..live.len())]];
        let Some((access, _)) = customer.session.clone() else {
            match api.login(&customer.person.email).await {
                Err(Dead) => return,
                Ok((StatusCode::OK, session)) => customer.session = session,
                Ok((status, _)) => {
                    return fail(format!("login of {}: {status}", customer.person.email));
                }
            }
            continue;
        };
        let next = customer.generation + 1;
        match rand::random_range(0..10) {
            // A profile update, read first so that the caches hold the old value.
            0..=3 => {
                match api.person(&access).await {
                    Err(Dead) => return,
                    Ok((_, Some(read))) if read == customer.person => {}
                    Ok(other) => return fail(format!("{} read {other:?}", customer.n)),
                }
                let new = person(customer.n, next);
                customer.generation = next;
                customer.person_pending = Some(new.clone());
                let body =
                    json!({"firstname": new.first, "lastname": new.last, "email": new.email});
                match api
                    .send(Method::PUT, "/info/person", Some(&access), Some(&body))
                    .await
                {
                    Err(Dead) => return,
                    Ok((StatusCode::OK, _)) => {
                        customer.person = new;
                        customer.person_pending = None;
                        customer.acked.person += 1;
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok((status, body)) => {
                        return fail(format!("person of {}: {status} {body}", customer.n));
                    }
                }
            }
            4..=7 => {
                match api.shipping(&access).await {
                    Err(Dead) => return,
                    Ok((_, Some(read))) if read == customer.shipping => {}
                    Ok(other) => return fail(format!("{} read {other:?}", customer.n)),
                }
                let new = shipping(customer.n, next);
                customer.generation = next;
                customer.shipping_pending = Some(new.clone());
                let body = json!({"address": new.address, "phone_number": new.phone});
                match api
                    .send(Method::PUT, "/info/shipping", Some(&access), Some(&body))
                    .await
                {
                    Err(Dead) => return,
                    Ok((StatusCode::OK, _)) => {
                        customer.shipping = new;
                        customer.shipping_pending = None;
                        customer.acked.shipping += 1;
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok((status, body)) => {
                        return fail(format!("shipping of {}: {status} {body}", customer.n));
                    }
                }
            }
            _ => {
                customer.logout_pending = true;
                match api
                    .send(Method::POST, "/auth/logout", Some(&access), None)
                    .await
                {
                    Err(Dead) => return,
                    Ok((StatusCode::OK, _)) => {
                        customer.logout_pending = false;
                        let session = customer.session.take().unwrap();
                        customer.logged_out.push(session);
                        customer.acked.logout += 1;
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok((status, body)) => {
                        return fail(format!("logout of {}: {status} {body}", customer.n));
                    }
                }
            }
        }
    }
}

/// A customer row, as the database holds it.
struct Row {
    id: u64,
    person: Person,
    shipping: Shipping,
}

async fn rows(database: &TestDatabase) -> Vec<Row> {
    database
        .query("SELECT id, first_name, last_name, email, address, phone_number FROM customers")
        .await
        .into_iter()
        .map(|columns| {
            let text = |i: usize| columns[i].clone().unwrap_or_default();
            Row {
                id: text(0).parse().expect("numeric id"),
                person: Person {
                    first: text(1),
                    last: text(2),
                    email: text(3),
                },
                shipping: Shipping {
                    address: text(4),
                    phone: text(5),
                },
            }
        })
        .collect()
}

/// The value after a restart: the acknowledged one, or the one in flight at the kill;
/// anything else is a lost or torn write.
fn settle<T: PartialEq + Clone + std::fmt::Debug>(
    what: &str,
    n: u32,
    stored: &T,
    acknowledged: &mut T,
    pending: &mut Option<T>,
    acked_now: u64,
    report: &mut Report,
) {
    let Report { counts, failures } = report;
    let in_flight = pending.take();
    if stored == acknowledged {
        counts.found += acked_now;
        if in_flight.is_some() {
            counts.unacknowledged_updates_not_applied += 1;
        }
    } else if in_flight.as_ref() == Some(stored) {
        counts.found += acked_now;
        counts.unacknowledged_updates_applied += 1;
        *acknowledged = stored.clone();
    } else {
        counts.lost += acked_now;
        counts.torn += 1;
        failures.push(format!(
            "{what} of customer {n}: stored {stored:?}, acknowledged {acknowledged:?}, in flight {in_flight:?}"
        ));
        *acknowledged = stored.clone();
    }
}

/// After a restart: every customer's rows against what was acknowledged, and what the API
/// reads against the rows.
async fn check(
    api: &Api,
    database: &TestDatabase,
    customers: &mut Vec<Customer>,
    report: &mut Report,
) {
    let rows = rows(database).await;
    let mut kept = Vec::new();
    for mut customer in customers.drain(..) {
        let acked = std::mem::take(&mut customer.acked);
        report.counts.acknowledged += acked.signup + acked.person + acked.shipping + acked.logout;
        let row = match customer.id {
            Some(id) => rows.iter().find(|r| r.id == id),
            // An unacknowledged signup: there or not, but whole if there.
            None => rows
                .iter()
                .find(|r| r.shipping.phone == customer.shipping.phone),
        };
        let Some(row) = row else {
            if customer.id.is_some() {
                report.counts.lost += acked.signup + acked.person + acked.shipping;
                report.failures.push(format!(
                    "customer {} (id {:?}) is gone",
                    customer.n, customer.id
                ));
            } else {
                report.counts.unacknowledged_signups_absent += 1;
            }
            continue;
        };
        if customer.id.is_none() {
            report.counts.unacknowledged_signups_present += 1;
            if row.person != customer.person || row.shipping != customer.shipping {
                report.counts.torn += 1;
                report.failures.push(format!(
                    "unacknowledged signup of {} is not whole: {:?} {:?}",
                    customer.n, row.person, row.shipping
                ));
            }
            customer.id = Some(row.id);
        } else {
            report.counts.found += acked.signup;
        }
        settle(
            "personal info",
            customer.n,
            &row.person,
            &mut customer.person,
            &mut customer.person_pending,
            acked.person,
            report,
        );
        settle(
            "shipping info",
            customer.n,
            &row.shipping,
            &mut customer.shipping,
            &mut customer.shipping_pending,
            acked.shipping,
            report,
        );

        // Logged-out sessions stay logged out: access and refresh tokens alike.
        for (i, (access, refresh)) in customer.logged_out.iter().enumerate() {
            let (status, _) = api.person(access).await.expect("service up");
            let (refreshed, _) = api
                .send(
                    Method::POST,
                    "/auth/refresh",
                    None,
                    Some(&json!({"refresh_token": refresh})),
                )
                .await
                .expect("service up");
            let revoked =
                status == StatusCode::UNAUTHORIZED && refreshed == StatusCode::UNAUTHORIZED;
            let this_round =
                i + usize::try_from(acked.logout).unwrap() >= customer.logged_out.len();
            if revoked {
                report.counts.found += u64::from(this_round);
            } else {
                report.counts.lost += u64::from(this_round);
                report.failures.push(format!(
                    "logged-out session of {} answers {status} / {refreshed}",
                    customer.n
                ));
            }
        }
        // A logout in flight at the kill: done or not, both fine; a session is needed.
        if std::mem::take(&mut customer.logout_pending)
            && let Some((access, _)) = &customer.session
            && api.person(access).await.expect("service up").0 == StatusCode::UNAUTHORIZED
        {
            customer.session = None;
        }
        // Whole and usable for login, whatever wrote it.
        if customer.session.is_none() {
            match api.login(&row.person.email).await.expect("service up") {
                (StatusCode::OK, session) => customer.session = session,
                (status, _) => report
                    .failures
                    .push(format!("customer {} cannot log in: {status}", customer.n)),
            }
        }
        // What the API reads is what the database holds (no stale cache entry).
        if let Some((access, _)) = &customer.session {
            let (_, person) = api.person(access).await.expect("service up");
            let (_, shipping) = api.shipping(access).await.expect("service up");
            if person.as_ref() != Some(&row.person) || shipping.as_ref() != Some(&row.shipping) {
                // One stale entry stays stale until it expires: counted once.
                if !std::mem::replace(&mut customer.stale, true) {
                    report.counts.stale += 1;
                }
                report.failures.push(format!(
                    "customer {} reads {person:?} {shipping:?}, the database holds {:?} {:?}",
                    customer.n, row.person, row.shipping
                ));
            }
        }
        kept.push(customer);
    }
    *customers = kept;
}

async fn acknowledged_writes_survive_sigkill(backend: Backend) {
    let started = Instant::now();
    let database = TestDatabase::fresh(&backend).await;
    let redis = std::env::var("TEST_REDIS_ADDRS")
        .ok()
        .filter(|a| !a.is_empty());
    let dir = tempfile::tempdir().unwrap();
    // Its own Sonyflake ids: the drills of both backends share one Redis at once.
    let machine_id = rand::random::<u16>().to_string();
    let mut envs = vec![
        ("DB_DSN", database.dsn.as_str()),
        ("JWT_SECRET", SECRET),
        // Tokens from before a kill are used after it.
        ("JWT_ACCESS_TOKEN_EXPIRE_SECOND", "3600"),
        ("JWT_REFRESH_TOKEN_EXPIRE_SECOND", "3600"),
        ("MACHINE_ID", machine_id.as_str()),
        ("HASH_THREADS", "2"),
    ];
    if let Some(addrs) = &redis {
        envs.push(("REDIS_ADDRS", addrs));
        // The two drills run at once with the same customer names and emails on two
        // databases: one Redis database each, or they would read each other's entries
        // (as two shops sharing one Redis without namespaces would).
        envs.push((
            "REDIS_DB",
            match backend {
                Backend::Sqlite => "1",
                Backend::MySql(_) => "2",
                Backend::Postgres(_) => "3",
            },
        ));
    }
    let failures = Arc::new(Mutex::new(Vec::new()));
    let mut report = Report::default();
    let mut customers: Vec<Customer> = Vec::new();
    let mut next_n = 0u32;

    for _ in 0..KILLS {
        let mut service = ServiceProcess::spawn(dir.path(), &envs);
        let api = Api {
            client: Client::new(),
            base: format!("http://{}", service.http),
        };
        // With Redis, ready means following the invalidation channel: the cache is in use.
        let ready = poll_within(
            Duration::from_secs(20),
            async || {
                api.client
                    .get(format!("{}/readyz", api.base))
                    .send()
                    .await
                    .map(|r| r.status())
                    .ok()
            },
            |status| *status == Some(StatusCode::OK),
        )
        .await;
        assert_eq!(ready, Some(StatusCode::OK), "ready after the restart");
        check(&api, &database, &mut customers, &mut report).await;

        // Writes from every worker until a random number of them was acknowledged.
        let acked = Arc::new(AtomicU64::new(0));
        let target = rand::random_range(3..=30);
        let mut shares: Vec<Vec<Customer>> = (0..WORKERS).map(|_| Vec::new()).collect();
        for (i, customer) in customers.drain(..).enumerate() {
            shares[i % WORKERS].push(customer);
        }
        let workers: Vec<_> = shares
            .into_iter()
            .enumerate()
            .map(|(w, mut share)| {
                let api = Api {
                    client: Client::new(),
                    base: api.base.clone(),
                };
                let (acked, failures) = (acked.clone(), failures.clone());
                // Numbers no other worker or round uses.
                let first = next_n + u32::try_from(w).unwrap() * 1000;
                tokio::spawn(async move {
                    let mut n = first;
                    work(
                        api,
                        &mut share,
                        || {
                            n += 1;
                            n
                        },
                        &acked,
                        &failures,
                    )
                    .await;
                    share
                })
            })
            .collect();
        next_n += u32::try_from(WORKERS).unwrap() * 1000;
        let reached = poll_within(
            Duration::from_secs(30),
            async || acked.load(Ordering::SeqCst),
            |n| *n >= target,
        )
        .await;
        assert!(
            reached >= target,
            "{reached} of {target} writes acknowledged; failures: {:?}",
            failures.lock().unwrap()
        );
        service.sigkill();
        let status = tokio::task::block_in_place(|| service.wait());
        assert!(!status.success(), "killed, not exited: {status}");
        // A database server finishes (or rolls back) a dead client's statements on its own
        // time: the checks start once none of its connections is left, or they would race them.
        let others = match backend {
            Backend::Sqlite => None,
            Backend::MySql(_) => {
                let name = database
                    .dsn
                    .split(")/")
                    .nth(1)
                    .unwrap()
                    .split('?')
                    .next()
                    .unwrap();
                Some(format!(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                     WHERE DB = '{name}' AND ID <> CONNECTION_ID()"
                ))
            }
            Backend::Postgres(_) => {
                let name = database.dsn.rsplit('/').next().unwrap();
                Some(format!(
                    "SELECT COUNT(*) FROM pg_stat_activity \
                     WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                ))
            }
        };
        if let Some(others) = others {
            let left = poll_within(
                Duration::from_secs(20),
                async || database.query(&others).await[0][0].clone(),
                |count| count.as_deref() == Some("0"),
            )
            .await;
            assert_eq!(
                left.as_deref(),
                Some("0"),
                "the killed process's connections end"
            );
        }
        report.counts.kills += 1;
        for worker in workers {
            customers.extend(worker.await.expect("worker"));
        }
    }
    // The last round's writes.
    let service = ServiceProcess::spawn(dir.path(), &envs);
    let api = Api {
        client: Client::new(),
        base: format!("http://{}", service.http),
    };
    poll_within(
        Duration::from_secs(20),
        async || {
            api.client
                .get(format!("{}/readyz", api.base))
                .send()
                .await
                .map(|r| r.status())
                .ok()
        },
        |status| *status == Some(StatusCode::OK),
    )
    .await;
    check(&api, &database, &mut customers, &mut report).await;

    let Report {
        counts,
        failures: check_failures,
    } = report;
    eprintln!(
        "crash drill on {} (Redis: {}): {counts:?}, customers {}, {:.1} s",
        backend.name(),
        redis.as_deref().unwrap_or("none"),
        customers.len(),
        started.elapsed().as_secs_f64()
    );
    let mut all = failures.lock().unwrap().clone();
    all.extend(check_failures);
    assert!(all.is_empty(), "{all:#?}");
    assert_eq!(counts.kills, KILLS);
    assert!(counts.acknowledged >= KILLS as u64 * 3);
    assert_eq!(
        (counts.lost, counts.torn, counts.stale),
        (0, 0, 0),
        "{counts:?}"
    );
    assert_eq!(counts.found, counts.acknowledged, "{counts:?}");
}
