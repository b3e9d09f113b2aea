//! The whole service started in the test process on random ports, and a client for it.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use reqwest::{Client, Response};
use saga_account::{
    app::Application,
    config::Settings,
    domain::CustomerId,
    domain::Secret,
    domain::clock::{Clock, SystemClock},
    metrics::Metrics,
    service::auth::{AuthService, Claims, TokenCodec, TokenKind},
    service::keys::KeyManager,
    storage::cache::CachedStore,
    transport::grpc::pb::auth_service_client::AuthServiceClient,
};
use serde_json::Value;
use tokio::{sync::oneshot, task::JoinHandle};

use super::{Backend, MFA_KEY, SECRET, TestDatabase, tokens_of};

pub struct TestApp {
    pub base: String,
    pub grpc_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    /// The operator API, when `ADMIN_PORT` was set.
    pub admin_addr: Option<SocketAddr>,
    pub client: Client,
    /// Signs and verifies with the app's own key ring.
    pub tokens: TokenCodec,
    /// The app's signing keys, to rotate them at the test's moment.
    pub keys: KeyManager,
    /// The service's auth service, for operator actions and reading the sessions' state.
    pub auth: AuthService,
    /// The app's own idea of now (its clock), in Unix seconds.
    now: Arc<dyn Fn() -> i64 + Send + Sync>,
    pub database: Arc<TestDatabase>,
    /// The service's own store (the cache in front of the database), for operator actions.
    pub cache: Arc<CachedStore>,
    pub metrics: Metrics,
    stop: Option<oneshot::Sender<()>>,
    pub server: Option<JoinHandle<anyhow::Result<()>>>,
    /// `DATA_DIR` as the app got it (where `.eml` files land without SMTP).
    pub data_dir: std::path::PathBuf,
    _data_dir: tempfile::TempDir,
}

/// Settings of a test app: random ports on loopback, a temporary data directory.
pub fn test_settings(dir: &std::path::Path) -> Settings {
    let mut s = Settings::defaults();
    s.listen.http_port = 0;
    s.listen.grpc_port = 0;
    s.listen.prom_port = 0;
    s.listen.bind_address = [127, 0, 0, 1].into();
    s.database.data_dir = dir.to_path_buf();
    s.signing.secret = Some(Secret::new(SECRET));
    // One key for every replica of a test, on every backend (SPEC section 16).
    s.mfa.encryption_key = Some(Secret::new(MFA_KEY));
    s.ids.machine_id = Some(rand::random());
    s.password.threads = 2;
    s.shutdown.timeout = Duration::from_secs(5);
    // Refusals are answered at once in tests (the pause has a test of its own).
    s.abuse.refusal_delay = Duration::ZERO;
    // Another replica's mails are found soon after they are queued.
    s.mail.poll = Duration::from_millis(50);
    s
}

pub async fn spawn_app(backend: &Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: &Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(&TestDatabase::fresh(backend).await, configure).await
}

/// Starts an app on an existing database (several replicas of one test share it).
pub async fn spawn_app_on(
    database: &Arc<TestDatabase>,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn_app_at_time(database, Arc::new(SystemClock), configure).await
}

/// As `spawn_app_on`, with the clock given (a `ManualClock` the test moves).
pub async fn spawn_app_at_time(
    database: &Arc<TestDatabase>,
    clock: Arc<dyn Clock>,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(dir.path());
    settings.database.dsn = Secret::new(database.dsn.clone());
    configure(&mut settings);
    let data_dir = settings.database.data_dir.clone();
    let app = Application::build_with_clock(settings, clock.clone())
        .await
        .expect("app builds");
    let auth = app.core().auth.clone();
    let keys = app.core().keys.clone();
    let base = format!("http://{}", app.http_addr());
    let grpc_addr = app.grpc_addr();
    let metrics_addr = app.metrics_addr();
    let admin_addr = app.admin_addr();
    let (cache, metrics) = (app.cache(), app.metrics());
    let (stop, stopped) = oneshot::channel::<()>();
    let now = {
        let clock = clock.clone();
        Arc::new(move || clock.now_secs()) as Arc<dyn Fn() -> i64 + Send + Sync>
    };
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        base,
        grpc_addr,
        metrics_addr,
        admin_addr,
        client: Client::new(),
        tokens: TokenCodec::with_ring(keys.ring(), None),
        keys,
        auth,
        now,
        database: database.clone(),
        cache,
        metrics,
        stop: Some(stop),
        server: Some(server),
        data_dir,
        _data_dir: dir,
    }
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

    /// The claims of one of our tokens, at the app's time.
    pub fn claims_of(&self, token: &str, kind: TokenKind) -> Claims {
        self.tokens
            .verify(token, kind, (self.now)())
            .expect("a valid token")
    }

    pub fn customer_of(&self, access_token: &str) -> CustomerId {
        self.tokens
            .verify(access_token, TokenKind::Access, (self.now)())
            .expect("a valid access token")
            .customer
    }

    /// Runs one SQL statement on the app's database, as an operator would.
    pub async fn sql(&self, statement: &str) {
        self.database.sql(statement).await
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
        assert!(self.auth.set_active(id, false).await.expect("set_active"));
    }

    /// A request with a bearer token and an optional JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.header("authorization", format!("bearer {token}"));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request")
    }

    /// Logs in and returns (access, refresh).
    pub async fn login(&self, email: &str, password: &str) -> (String, String) {
        let response = self
            .post(
                "/auth/login",
                &serde_json::json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(response.status(), 200, "login of {email}");
        tokens_of(response).await
    }

    /// Waits until the app follows its Redis channels (when Redis is configured).
    pub async fn wait_subscribed(&self) {
        if let Some(redis) = self.cache.redis() {
            assert!(
                redis.wait_until_subscribed(Duration::from_secs(10)).await,
                "replica subscribed to its Redis channels"
            );
        }
    }

    /// Stops the app the way SIGTERM does and waits for it to finish.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.trigger_shutdown();
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
