//! Test databases: a fresh SQLite file, or a fresh database on the MySQL/MariaDB server of
//! `TEST_MYSQL_DSN` or the PostgreSQL server of `TEST_POSTGRES_DSN`, dropped again when
//! the last app using it is gone.

use std::sync::Arc;

/// Which database a test runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    /// A server URL (`mysql://user:pass@host:port/db`); each test database is a new one on it.
    MySql(String),
    /// A server URL (`postgres://user:pass@host:port/db`); each test database is a new one.
    Postgres(String),
}

impl Backend {
    /// MariaDB/MySQL when `TEST_MYSQL_DSN` is set. Otherwise the test is skipped with a note,
    /// unless `TEST_REQUIRE_SERVICES` says the server must be there (CI).
    pub fn mysql() -> Option<Backend> {
        server(
            "TEST_MYSQL_DSN",
            "mysql://user:pass@127.0.0.1:3306/db",
            "MySQL",
        )
        .map(Backend::MySql)
    }

    /// PostgreSQL when `TEST_POSTGRES_DSN` is set; skipped with a note otherwise (not in CI).
    pub fn postgres() -> Option<Backend> {
        server(
            "TEST_POSTGRES_DSN",
            "postgres://user:pass@127.0.0.1:5432/db",
            "PostgreSQL",
        )
        .map(Backend::Postgres)
    }

    /// The server backend a test of `server_tests!` runs on: `kind` when configured; for
    /// "mysql" without `TEST_MYSQL_DSN` (and outside CI), SQLite, so that a fresh checkout
    /// still runs the test body.
    pub fn server_or_sqlite(kind: &str) -> Option<Backend> {
        match kind {
            "postgres" => Backend::postgres(),
            _ if std::env::var("TEST_MYSQL_DSN").is_ok_and(|d| !d.is_empty()) => Backend::mysql(),
            _ if std::env::var("TEST_REQUIRE_SERVICES").is_ok() => Backend::mysql(),
            _ => Some(Backend::Sqlite),
        }
    }

    /// The product's name for the backend, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::MySql(_) => "MariaDB",
            Backend::Postgres(_) => "PostgreSQL",
        }
    }
}

/// The server URL in `variable`, or a printed note that the tests needing it are skipped
/// (a failure when `TEST_REQUIRE_SERVICES` says the server must be there, as in CI).
fn server(variable: &str, example: &str, what: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(dsn) if !dsn.is_empty() => Some(dsn),
        _ => {
            assert!(
                std::env::var("TEST_REQUIRE_SERVICES").is_err(),
                "TEST_REQUIRE_SERVICES is set but {variable} is not"
            );
            eprintln!("skipped: set {variable}={example} to run the {what} tests");
            None
        }
    }
}

/// A new, empty database. Replicas of one test share it.
pub struct TestDatabase {
    pub backend: Backend,
    /// What `DB_DSN` is; on MySQL in the Go driver's form, so every MySQL test also proves
    /// that form works as it is.
    pub dsn: String,
    _sqlite_dir: Option<tempfile::TempDir>,
    /// Server URL and database name, to drop it afterwards.
    server: Option<(String, String)>,
}

impl TestDatabase {
    pub async fn fresh(backend: &Backend) -> Arc<TestDatabase> {
        Arc::new(match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                TestDatabase {
                    backend: backend.clone(),
                    dsn: format!("sqlite://{}", dir.path().join("test.db").display()),
                    _sqlite_dir: Some(dir),
                    server: None,
                }
            }
            Backend::MySql(server) => {
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
                TestDatabase {
                    backend: backend.clone(),
                    dsn: format!(
                        "{}:{}@tcp({}:{})/{name}?charset=utf8mb4&parseTime=True&loc=Local",
                        url.username(),
                        url.password().unwrap_or_default(),
                        url.host_str().unwrap_or("127.0.0.1"),
                        url.port().unwrap_or(3306)
                    ),
                    _sqlite_dir: None,
                    server: Some((server.clone(), name)),
                }
            }
            Backend::Postgres(server) => {
                use sqlx::Connection;
                let name = format!("test_{:016x}", rand::random::<u64>());
                let mut conn = sqlx::PgConnection::connect(server)
                    .await
                    .expect("connect to TEST_POSTGRES_DSN");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let mut url = url::Url::parse(server).expect("TEST_POSTGRES_DSN is a URL");
                url.set_path(&name);
                TestDatabase {
                    backend: backend.clone(),
                    dsn: url.to_string(),
                    _sqlite_dir: None,
                    server: Some((server.clone(), name)),
                }
            }
        })
    }

    /// A URL sqlx can open directly.
    fn url(&self) -> String {
        match &self.server {
            None => self.dsn.clone(),
            Some((server, name)) => {
                let mut url = url::Url::parse(server).expect("url");
                url.set_path(name);
                url.to_string()
            }
        }
    }

    /// Runs one SQL statement, as an operator would.
    pub async fn sql(&self, statement: &str) {
        self.query(statement).await;
    }

    /// Runs one query and returns every row, each column as text (NULL as `None`).
    pub async fn query(&self, statement: &str) -> Vec<Vec<Option<String>>> {
        use sqlx::{Connection, Row};
        macro_rules! as_text {
            ($row:expr, $i:expr, $($t:ty),*) => {{
                let mut text = None;
                $(
                    if text.is_none() {
                        if let Ok(v) = $row.try_get::<Option<$t>, _>($i) {
                            text = Some(v.map(|v| v.to_string()));
                        }
                    }
                )*
                text.or_else(|| {
                    $row.try_get::<Option<Vec<u8>>, _>($i)
                        .ok()
                        .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()))
                })
                .flatten()
            }};
        }
        // Every row of `statement` on a fresh connection of `$conn`, each column read as the
        // first of `$t` that decodes it.
        macro_rules! rows_as_text {
            ($conn:ty, $($t:ty),*) => {{
                let mut conn = <$conn>::connect(&self.url()).await.expect("connect");
                let rows = sqlx::query(statement).fetch_all(&mut conn).await.expect("sql");
                rows.iter()
                    .map(|r| (0..r.columns().len()).map(|i| as_text!(r, i, $($t),*)).collect())
                    .collect()
            }};
        }
        match self.backend {
            Backend::Sqlite => rows_as_text!(sqlx::SqliteConnection, i64, String),
            Backend::MySql(_) => rows_as_text!(sqlx::MySqlConnection, i64, u64, i8, bool, String),
            Backend::Postgres(_) => rows_as_text!(sqlx::PgConnection, i64, i32, bool, String),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((server, name)) = self.server.take() else {
            return;
        };
        let postgres = matches!(self.backend, Backend::Postgres(_));
        // Drop is not async and may run inside a runtime: drop the database from a thread
        // of its own.
        let dropped = std::thread::spawn(move || {
            use sqlx::Connection;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                if postgres {
                    // WITH (FORCE): a replica of the test may still hold a connection.
                    let mut conn = sqlx::PgConnection::connect(&server).await?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await?;
                } else {
                    let mut conn = sqlx::MySqlConnection::connect(&server).await?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                        .execute(&mut conn)
                        .await?;
                }
                anyhow::Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop a test database: {dropped:?}");
        }
    }
}
