//! Starts the whole service on random ports against a fresh database and talks to it as a
//! client does.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use reqwest::{Client, Response};
use saga_account::{
    auth::{TokenCodec, TokenKind},
    cache::CachedStore,
    config::{Secret, Settings},
    domain::CustomerId,
    grpc::pb::auth_service_client::AuthServiceClient,
    metrics::Metrics,
    startup::Application,
    store::CustomerStore,
};
use serde_json::{Value, json};
use tokio::{sync::oneshot, task::JoinHandle};

pub const SECRET: &str = "93c61a11-a4f6-42fc-a995-4f1c850822bb";

/// Which database a test runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    /// A server URL (`mysql://user:pass@host:port/db`); each app gets a fresh database on it.
    MySql(String),
}

impl Backend {
    /// MySQL when `TEST_MYSQL_DSN` is set, SQLite otherwise (for tests about something else).
    pub fn mysql_if_configured() -> Backend {
        match std::env::var("TEST_MYSQL_DSN") {
            Ok(dsn) if !dsn.is_empty() => Backend::MySql(dsn),
            _ => Backend::Sqlite,
        }
    }

    /// MariaDB/MySQL when `TEST_MYSQL_DSN` is set. Otherwise the test is skipped with a note,
    /// unless `TEST_REQUIRE_SERVICES` says the server must be there (CI).
    pub fn mysql() -> Option<Backend> {
        match std::env::var("TEST_MYSQL_DSN") {
            Ok(dsn) if !dsn.is_empty() => Some(Backend::MySql(dsn)),
            _ => {
                assert!(
                    std::env::var("TEST_REQUIRE_SERVICES").is_err(),
                    "TEST_REQUIRE_SERVICES is set but TEST_MYSQL_DSN is not"
                );
                eprintln!(
                    "skipped: set TEST_MYSQL_DSN=mysql://user:pass@127.0.0.1:3306/db to run the MySQL tests"
                );
                None
            }
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub grpc_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub client: Client,
    pub tokens: TokenCodec,
    /// What `DB_DSN` was; tests reach into the database like an operator would.
    pub db_dsn: String,
    pub backend: Backend,
    /// The service's own store (the cache in front of the database), for operator actions.
    pub store: Arc<dyn CustomerStore>,
    pub cache: Arc<CachedStore>,
    pub metrics: Metrics,
    stop: Option<oneshot::Sender<()>>,
    pub server: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// Settings of a test app: random ports on loopback, a temporary data directory.
pub fn test_settings(dir: &std::path::Path) -> Settings {
    let mut s = Settings::defaults();
    s.http_port = 0;
    s.grpc_port = 0;
    s.prom_port = 0;
    s.bind_address = [127, 0, 0, 1].into();
    s.data_dir = dir.to_path_buf();
    s.jwt_secret = Some(Secret::new(SECRET));
    s.machine_id = Some(rand::random());
    s.hash_threads = 2;
    s.shutdown_timeout = Duration::from_secs(5);
    s
}

pub async fn spawn_app(backend: &Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: &Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_dsn = fresh_dsn(backend, dir.path()).await;
    spawn_app_at(backend, db_dsn, dir, configure).await
}

/// A DSN of a new, empty database on `backend`.
pub async fn fresh_dsn(backend: &Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.join("test.db").display()),
        Backend::MySql(server) => fresh_mysql_database(server).await,
    }
}

/// Starts the app on an existing database.
pub async fn spawn_app_at(
    backend: &Backend,
    db_dsn: String,
    dir: tempfile::TempDir,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = test_settings(dir.path());
    settings.db_dsn = Secret::new(db_dsn.clone());
    configure(&mut settings);
    let app = Application::build(settings).await.expect("app builds");
    let base = format!("http://{}", app.http_addr());
    let grpc_addr = app.grpc_addr();
    let metrics_addr = app.metrics_addr();
    let (store, cache, metrics) = (app.store(), app.cache(), app.metrics());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        base,
        grpc_addr,
        metrics_addr,
        client: Client::new(),
        tokens: TokenCodec::new(SECRET.as_bytes()),
        db_dsn,
        backend: backend.clone(),
        store,
        cache,
        metrics,
        stop: Some(stop),
        server: Some(server),
        _dir: dir,
    }
}

/// Creates `test_<random>` on the server and returns a DSN for it in the Go driver's form,
/// so every MySQL test also proves that form works as it is.
async fn fresh_mysql_database(server: &str) -> String {
    use sqlx::Connection;
    let url = url::Url::parse(server).expect("TEST_MYSQL_DSN is a mysql:// URL");
    let name = format!("test_{:016x}", rand::random::<u64>());
    let mut conn = sqlx::MySqlConnection::connect(server)
        .await
        .expect("connect to TEST_MYSQL_DSN");
    sqlx::query(&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    format!(
        "{}:{}@tcp({}:{})/{name}?charset=utf8mb4&parseTime=True&loc=Local",
        url.username(),
        url.password().unwrap_or_default(),
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(3306)
    )
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/account{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        content_type: &str,
    ) -> Response {
        self.client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .header("authorization", format!("bearer {token}"))
            .send()
            .await
            .expect("request")
    }

    /// An authenticated GET whose JSON body is the answer.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        self.get_auth(path, token)
            .await
            .json()
            .await
            .expect("JSON body")
    }

    pub async fn put_auth(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .put(self.url(path))
            .header("authorization", format!("bearer {token}"))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Signs up and returns (access, refresh).
    pub async fn signup(&self, body: &Value) -> (String, String) {
        let response = self.post("/auth/signup", body).await;
        assert_eq!(response.status(), 201, "signup of {body}");
        tokens_of(response).await
    }

    pub async fn grpc(&self) -> AuthServiceClient<tonic::transport::Channel> {
        AuthServiceClient::connect(format!("http://{}", self.grpc_addr))
            .await
            .expect("gRPC connects")
    }

    pub fn customer_of(&self, access_token: &str) -> CustomerId {
        self.tokens
            .verify(access_token, TokenKind::Access, now())
            .expect("a valid access token")
    }

    /// Runs one SQL statement on the app's database, as an operator would.
    pub async fn sql(&self, statement: &str) {
        run_sql(&self.backend, &self.db_dsn, statement).await
    }

    /// The Prometheus text exposition, as a scraper gets it.
    pub async fn scrape(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.metrics_addr))
            .await
            .expect("scrape")
            .text()
            .await
            .expect("metrics text")
    }

    /// Deactivates a customer the way an operator does (`saga-account customer deactivate`).
    pub async fn deactivate(&self, id: CustomerId) {
        assert_eq!(
            self.store.set_active(id, false).await.expect("set_active"),
            Some(true)
        );
    }

    /// Stops the app the way SIGTERM does and waits for it to finish.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.server.take() {
            Some(server) => server.await.expect("server task"),
            None => Ok(()),
        }
    }

    pub fn trigger_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Runs one SQL statement on the database behind `db_dsn`.
pub async fn run_sql(backend: &Backend, db_dsn: &str, statement: &str) {
    use sqlx::Connection;
    match backend {
        Backend::Sqlite => {
            let path = db_dsn.trim_start_matches("sqlite://");
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{path}"))
                .await
                .expect("open sqlite");
            sqlx::query(statement)
                .execute(&mut conn)
                .await
                .expect("sql");
        }
        Backend::MySql(server) => {
            let db = db_dsn
                .rsplit_once('/')
                .and_then(|(_, rest)| rest.split('?').next())
                .expect("db name");
            let mut url = url::Url::parse(server).expect("url");
            url.set_path(db);
            let mut conn = sqlx::MySqlConnection::connect(url.as_str())
                .await
                .expect("connect");
            sqlx::query(statement)
                .execute(&mut conn)
                .await
                .expect("sql");
        }
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

pub async fn tokens_of(response: Response) -> (String, String) {
    let body: Value = response.json().await.expect("json body");
    let access = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let refresh = body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned();
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(2),
        "exactly the two tokens: {body}"
    );
    (access, refresh)
}

/// Asserts a status and a `{"msg": ...}` body.
pub async fn assert_msg(response: Response, status: u16, msg: &str) {
    let got = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(got, status, "body: {text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    assert_eq!(body, json!({ "msg": msg }));
}

/// Asserts a 401 with an empty body (the `/info` middleware's answer).
pub async fn assert_empty_401(response: Response) {
    assert_eq!(response.status(), 401);
    assert_eq!(response.text().await.unwrap_or_default(), "");
}

/// A fresh, valid signup body; `n` keeps email and phone unique.
pub fn customer(n: u32) -> Value {
    json!({
        "password": "password-123",
        "firstname": "Ming",
        "lastname": "Hsu",
        "email": format!("ming{n}@example.com"),
        "address": format!("{n} Main Street"),
        "phone_number": format!("0912{n:06}"),
    })
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_saga-account"))
}

/// Runs every listed test body once per backend: always on SQLite, on MySQL when configured.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = $crate::helpers::Backend::mysql() {
                        super::$name(backend).await
                    }
                }
            )*
        }
    };
}

/// A TCP forwarder whose far side can be cut and restored: the database "goes away" for the
/// service while the test keeps running.
pub struct TcpProxy {
    pub addr: SocketAddr,
    target: SocketAddr,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> std::sync::Arc<TcpProxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let proxy = std::sync::Arc::new(TcpProxy {
            addr: listener.local_addr().expect("addr"),
            target,
            tasks: Default::default(),
        });
        proxy.serve(listener);
        proxy
    }

    fn serve(self: &std::sync::Arc<Self>, listener: tokio::net::TcpListener) {
        let proxy = self.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = proxy.target;
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                proxy.tasks.lock().unwrap().push(task);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Accepts connections again on the same address.
    pub async fn restore(self: &std::sync::Arc<Self>) {
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        self.serve(listener);
    }
}

/// SIGTERM to a child process, as an orchestrator stops the service.
pub fn sigterm(child: &std::process::Child) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits");
    // SAFETY: kill(2) with a valid signal number has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(rc, 0, "SIGTERM delivered");
}

/// Calls `probe` until `done` holds for its result (for up to 5 s), and returns the last
/// result: for what another replica sees "eventually", within the pub/sub delay.
pub async fn poll_until<T>(mut probe: impl AsyncFnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let result = probe().await;
        if done(&result) || std::time::Instant::now() >= deadline {
            return result;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
