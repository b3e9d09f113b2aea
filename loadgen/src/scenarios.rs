//! The workloads: each request is checked, a wrong answer counts as an error.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use saga_account::transport::grpc::pb::AuthPayload;
use serde_json::{Value, json};

use crate::{
    clients::{HttpConnection, grpc_channels},
    stats::{Recorder, Report},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// gRPC Auth with valid access tokens.
    Auth,
    /// GET /info/person (cache-hit path after the first read).
    Person,
    /// GET /info/shipping.
    Shipping,
    /// GET /info/sessions: a read that no cache answers (the sessions table every time).
    Sessions,
    /// POST /auth/refresh (customer check cached).
    Refresh,
    /// POST /auth/login (bcrypt on the server).
    Login,
    /// POST /auth/signup (bcrypt and an insert).
    Signup,
    /// Mostly Auth and cached reads, some refreshes, a few logins.
    Mix,
    /// Logins saturating the hashing pool while Auth runs beside them.
    AuthUnderLogin,
    /// `Auth` with session-less tokens (no revocation check), then with session tokens
    /// (checked against the revocation set), in one run; needs --jwt-secret.
    AuthRevocation,
    /// Legitimate logins and `Auth`, alone then while 200 attackers guess one account's
    /// password (the service must trust 127.0.0.1: TRUSTED_PROXIES).
    LoginUnderAttack,
    /// The same while 200 attackers spray guesses over many accounts from one address.
    LoginUnderSpray,
    /// Failed logins one at a time, unknown email against wrong password (needs
    /// LOGIN_MAX_FAILURES=0 on the service); --requests pairs.
    LoginTiming,
    /// `Auth` with HS256 tokens, then with tokens of the service's key file
    /// (--jwt-private-key), each token presented 100 times, then every token new; needs
    /// --jwt-secret and --requests (tokens are minted here).
    AuthKeys,
}

/// Where the requests go.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub http: SocketAddr,
    pub grpc: SocketAddr,
}

#[derive(Debug, Clone)]
pub struct Load {
    pub duration: Duration,
    pub requests: Option<u64>,
    pub concurrency: usize,
    pub grpc_connections: usize,
    /// Total requests per second to aim at, spread over the workers; `None` = as fast as possible.
    pub rate: Option<f64>,
    /// Ceiling servers answer fixed bodies: only the status is checked.
    pub check_bodies: bool,
}

/// A customer the tool signed up, with what the service should answer about it.
#[derive(Debug, Clone)]
pub struct Customer {
    pub id: u64,
    pub email: String,
    pub password: String,
    pub access: String,
    pub person: Value,
    pub shipping: Value,
    /// `person` and `shipping` as the service writes them.
    pub person_body: Vec<u8>,
    pub shipping_body: Vec<u8>,
}

impl Customer {
    pub fn new(
        id: u64,
        email: String,
        password: String,
        access: String,
        person: Value,
        shipping: Value,
    ) -> Self {
        Self {
            person_body: expected_bytes(&person, PERSON_FIELDS),
            shipping_body: expected_bytes(&shipping, SHIPPING_FIELDS),
            id,
            email,
            password,
            access,
            person,
            shipping,
        }
    }
}

const PERSON_FIELDS: &[&str] = &["firstname", "lastname", "email"];
const SHIPPING_FIELDS: &[&str] = &["address", "phone_number"];

/// `expected` written in the field order the service writes, for a byte comparison that
/// costs the tool next to nothing (a JSON parse per response would slow the tool, and so
/// every figure, on a machine it shares with the service).
fn expected_bytes(expected: &Value, order: &[&str]) -> Vec<u8> {
    let fields: Vec<String> = order
        .iter()
        .map(|k| format!("{}:{}", Value::from(*k), expected[*k]))
        .collect();
    format!("{{{}}}", fields.join(",")).into_bytes()
}

/// The answer is `expected`: the same bytes, or failing that the same JSON value.
fn same_body(body: &[u8], expected_body: &[u8], expected: &Value) -> bool {
    body == expected_body || serde_json::from_slice::<Value>(body).ok().as_ref() == Some(expected)
}

const PASSWORD: &str = "load-password-1";

/// The `CustomerID` claim of a token (its signature is the service's business).
pub fn token_customer(token: &str) -> Option<u64> {
    let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
    serde_json::from_slice::<Value>(&payload).ok()?["CustomerID"].as_u64()
}

fn tokens(body: &[u8]) -> Option<(String, String, u64)> {
    let body: Value = serde_json::from_slice(body).ok()?;
    let access = body["access_token"].as_str()?.to_owned();
    let refresh = body["refresh_token"].as_str()?.to_owned();
    let id = token_customer(&access)?;
    (token_customer(&refresh) == Some(id)).then_some((access, refresh, id))
}

fn new_customer_body(tag: &str) -> Value {
    json!({
        "password": PASSWORD,
        "firstname": "Load",
        "lastname": "Test",
        "email": format!("load-{tag}@load.test"),
        "address": format!("{tag} Load Street"),
        "phone_number": format!("L{tag}"),
    })
}

/// A run-unique tag, so repeated runs against one database do not collide.
pub fn run_tag() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// Signs up `n` customers through the API.
pub async fn sign_up(target: Target, n: usize) -> anyhow::Result<Vec<Customer>> {
    let tag = run_tag();
    let mut tasks = Vec::new();
    for chunk in 0..4 {
        let tag = tag.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = HttpConnection::open(target.http).await?;
            let mut made = Vec::new();
            for i in (chunk..n).step_by(4) {
                let body = new_customer_body(&format!("{tag}-{i}"));
                let (status, answer) =
                    conn.call("POST", "/api/account/auth/signup", None, Some(Bytes::from(body.to_string()))).await?;
                anyhow::ensure!(status == 201, "signup answered {status}: {}", String::from_utf8_lossy(&answer));
                let (access, _, id) = tokens(&answer).ok_or_else(|| anyhow::anyhow!("signup answer without tokens"))?;
                made.push(Customer::new(
                    id,
                    body["email"].as_str().unwrap_or_default().to_owned(),
                    PASSWORD.to_owned(),
                    access,
                    json!({"firstname": body["firstname"], "lastname": body["lastname"], "email": body["email"]}),
                    json!({"address": body["address"], "phone_number": body["phone_number"]}),
                ));
            }
            anyhow::Ok(made)
        }));
    }
    let mut customers = Vec::new();
    for task in tasks {
        customers.extend(task.await??);
    }
    Ok(customers)
}

/// What one request of a scenario is.
#[derive(Clone, Copy)]
enum Op {
    Auth,
    Person,
    Shipping,
    Sessions,
    Refresh,
    Login,
    Signup,
}

impl Op {
    fn of(scenario: Scenario, n: u64) -> Op {
        match scenario {
            Scenario::Auth
            | Scenario::AuthUnderLogin
            | Scenario::AuthRevocation
            | Scenario::AuthKeys
            | Scenario::LoginUnderAttack
            | Scenario::LoginUnderSpray
            | Scenario::LoginTiming => Op::Auth,
            Scenario::Person => Op::Person,
            Scenario::Shipping => Op::Shipping,
            Scenario::Sessions => Op::Sessions,
            Scenario::Refresh => Op::Refresh,
            Scenario::Login => Op::Login,
            Scenario::Signup => Op::Signup,
            // Per 1000: 600 Auth, 200 person, 100 shipping, 99 refresh, 1 login.
            Scenario::Mix => match n % 1000 {
                0 => Op::Login,
                1..=99 => Op::Refresh,
                100..=199 => Op::Shipping,
                200..=399 => Op::Person,
                _ => Op::Auth,
            },
        }
    }
}

struct Worker {
    http: Option<HttpConnection>,
    grpc: saga_account::transport::grpc::pb::auth_service_client::AuthServiceClient<
        tonic::transport::Channel,
    >,
    index: usize,
    sent: u64,
    tag: String,
    /// The worker's own session for refreshes (customer id, current refresh token): refresh
    /// tokens rotate, so no two workers may present the same one.
    session: Option<(u64, String)>,
}

impl Worker {
    async fn request(&mut self, op: Op, customer: &Customer, check: bool) -> Result<(), String> {
        let expect =
            |ok: bool, what: &dyn Fn() -> String| if ok || !check { Ok(()) } else { Err(what()) };
        match op {
            Op::Auth => {
                let reply = self
                    .grpc
                    .auth(AuthPayload {
                        access_token: customer.access.clone(),
                    })
                    .await
                    .map_err(|s| format!("Auth: {s}"))?
                    .into_inner();
                expect(reply.customer_id == customer.id && !reply.expired, &|| {
                    format!("Auth answered {reply:?} for {}", customer.id)
                })
            }
            Op::Person | Op::Shipping => {
                let (path, expected, expected_body) = match op {
                    Op::Person => (
                        "/api/account/info/person",
                        &customer.person,
                        &customer.person_body,
                    ),
                    _ => (
                        "/api/account/info/shipping",
                        &customer.shipping,
                        &customer.shipping_body,
                    ),
                };
                let (status, body) = self
                    .http()?
                    .call("GET", path, Some(&customer.access), None)
                    .await
                    .map_err(|e| e.to_string())?;
                if status != 200 {
                    return Err(format!("{path} answered {status}"));
                }
                expect(!check || same_body(&body, expected_body, expected), &|| {
                    format!("{path} answered {}", String::from_utf8_lossy(&body))
                })
            }
            Op::Sessions => {
                let path = "/api/account/info/sessions";
                let (status, body) = self
                    .http()?
                    .call("GET", path, Some(&customer.access), None)
                    .await
                    .map_err(|e| e.to_string())?;
                let listed = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .is_some_and(|v| v["sessions"].is_array());
                if status != 200 {
                    return Err(format!("{path} answered {status}"));
                }
                expect(listed, &|| {
                    format!("{path} answered {}", String::from_utf8_lossy(&body))
                })
            }
            Op::Refresh | Op::Login | Op::Signup => {
                let (path, body, created) = match op {
                    Op::Refresh => {
                        let (_, token) = self
                            .session
                            .as_ref()
                            .ok_or_else(|| "no session of its own to refresh".to_owned())?;
                        (
                            "/api/account/auth/refresh",
                            json!({"refresh_token": token}),
                            false,
                        )
                    }
                    Op::Login => (
                        "/api/account/auth/login",
                        json!({"email": customer.email, "password": customer.password}),
                        false,
                    ),
                    _ => {
                        self.sent += 1;
                        (
                            "/api/account/auth/signup",
                            new_customer_body(&format!(
                                "{}-{}-{}",
                                self.tag, self.index, self.sent
                            )),
                            true,
                        )
                    }
                };
                let (status, answer) = self
                    .http()?
                    .call("POST", path, None, Some(Bytes::from(body.to_string())))
                    .await
                    .map_err(|e| e.to_string())?;
                let wanted = if created { 201 } else { 200 };
                if status != wanted {
                    return Err(format!(
                        "{path} answered {status}: {}",
                        String::from_utf8_lossy(&answer)
                    ));
                }
                let answered = tokens(&answer);
                let id = answered.as_ref().map(|(_, _, id)| *id);
                let wanted_id = match (op, &self.session) {
                    (Op::Refresh, Some((own, _))) => *own,
                    _ => customer.id,
                };
                if let (Op::Refresh, Some((_, refresh, _)), Some(session)) =
                    (op, answered, self.session.as_mut())
                {
                    session.1 = refresh;
                }
                expect(id.is_some() && (created || id == Some(wanted_id)), &|| {
                    format!("{path} answered {}", String::from_utf8_lossy(&answer))
                })
            }
        }
    }

    fn http(&mut self) -> Result<&mut HttpConnection, String> {
        self.http
            .as_mut()
            .ok_or_else(|| "no HTTP connection".to_owned())
    }
}

/// Runs `scenario` with `load.concurrency` workers until the time or the request budget is
/// spent.
pub async fn run(
    name: &str,
    scenario: Scenario,
    target: Target,
    customers: Arc<Vec<Customer>>,
    load: &Load,
) -> anyhow::Result<Report> {
    anyhow::ensure!(!customers.is_empty(), "no customers to drive");
    let channels = grpc_channels(target.grpc, load.grpc_connections).await?;
    let needs_http = !matches!(
        scenario,
        Scenario::Auth | Scenario::AuthUnderLogin | Scenario::AuthRevocation | Scenario::AuthKeys
    );
    let budget = Arc::new(AtomicI64::new(
        load.requests
            .map_or(i64::MAX, |r| i64::try_from(r).unwrap_or(i64::MAX)),
    ));
    let tag = run_tag();
    let mut workers = Vec::new();
    for index in 0..load.concurrency.max(1) {
        let http = if needs_http {
            Some(HttpConnection::open(target.http).await?)
        } else {
            None
        };
        workers.push(Worker {
            http,
            grpc: channels[index % channels.len()].clone(),
            index,
            sent: 0,
            tag: tag.clone(),
            session: None,
        });
    }
    if matches!(scenario, Scenario::Refresh | Scenario::Mix) {
        // One login per worker, before the clock starts.
        let logins = workers.iter_mut().map(|worker| {
            let customer = &customers[worker.index % customers.len()];
            async move {
                let body = json!({"email": customer.email, "password": customer.password});
                let (status, answer) = worker
                    .http()
                    .map_err(anyhow::Error::msg)?
                    .call(
                        "POST",
                        "/api/account/auth/login",
                        None,
                        Some(Bytes::from(body.to_string())),
                    )
                    .await?;
                anyhow::ensure!(status == 200, "login for a session answered {status}");
                let (_, refresh, id) = tokens(&answer)
                    .ok_or_else(|| anyhow::anyhow!("login answer without tokens"))?;
                worker.session = Some((id, refresh));
                anyhow::Ok(())
            }
        });
        for result in futures_util::future::join_all(logins).await {
            result?;
        }
    }
    let start = Instant::now();
    let deadline = start + load.duration;
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut worker| {
            let (customers, budget, check) = (customers.clone(), budget.clone(), load.check_bodies);
            let concurrency = load.concurrency.max(1);
            let pace = load
                .rate
                .map(|r| Duration::from_secs_f64(load.concurrency.max(1) as f64 / r.max(1e-3)));
            tokio::spawn(async move {
                let mut recorder = Recorder::new();
                // Workers start at evenly spaced customers: one pass over N requests reads each once.
                let mut n = (worker.index * customers.len() / concurrency) as u64;
                let mut next = tokio::time::Instant::now();
                while Instant::now() < deadline && budget.fetch_sub(1, Ordering::Relaxed) > 0 {
                    if let Some(pace) = pace {
                        next += pace;
                        tokio::time::sleep_until(next).await;
                    }
                    n += 1;
                    let customer = &customers[(n as usize) % customers.len()];
                    let begun = Instant::now();
                    match worker.request(Op::of(scenario, n), customer, check).await {
                        Ok(()) => recorder.ok(begun.elapsed()),
                        Err(e) => recorder.error(|| e),
                    }
                }
                recorder
            })
        })
        .collect();
    let mut total = Recorder::new();
    for task in tasks {
        total.merge(task.await?);
    }
    Ok(Report::from(name, total, start.elapsed()))
}
