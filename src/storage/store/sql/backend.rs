//! The three SQL stores themselves: their pools, the breaker every statement runs behind,
//! how a driver error is classified, and opening (with migrations). The traits are
//! implemented in the sibling files, one per table family.

use std::{future::Future, str::FromStr, sync::Arc, time::Duration};

use sqlx::{
    MySql, Pool, Postgres, Sqlite,
    mysql::{MySqlConnectOptions, MySqlPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use crate::{
    domain::{CustomerId, clock::Clock},
    metrics::Metrics,
    storage::breaker::Breaker,
    storage::store::{
        dsn::SqliteTarget,
        error::{StoreError, StoreResult},
    },
};

/// How many connections a pool keeps and how long a request waits for one.
#[derive(Debug, Clone)]
pub struct PoolLimits {
    pub max_open: u32,
    pub max_idle: u32,
    /// How long a request waits for a connection before the database counts as unreachable.
    pub acquire_timeout: Duration,
}

/// How long requests are refused after the database was found unreachable.
const BREAKER_PAUSE: Duration = Duration::from_millis(500);

/// Turns a driver error into what the caller acts on.
fn classify(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation => {
            if db.constraint() == Some("customers_pkey") || names_primary_key(db.message()) {
                StoreError::IdTaken
            } else {
                StoreError::Duplicate
            }
        }
        sqlx::Error::Database(db) if is_transient(db.code().as_deref()) => {
            StoreError::Unavailable(err.into())
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err.into()),
        _ => StoreError::Other(err.into()),
    }
}

/// MySQL: "Duplicate entry '…' for key 'PRIMARY'" (8.0: 'customers.PRIMARY');
/// SQLite: "UNIQUE constraint failed: customers.id" (PostgreSQL names the constraint,
/// `customers_pkey`). The value itself may contain anything, so only the part naming the
/// key is looked at.
fn names_primary_key(message: &str) -> bool {
    if let Some((_, key)) = message.rsplit_once("for key") {
        return key.contains("PRIMARY");
    }
    if let Some((_, columns)) = message.rsplit_once("failed:") {
        return columns.trim() == "customers.id";
    }
    false
}

/// A column that did not hold what it should.
pub(super) fn decode_error(what: &'static str) -> StoreError {
    StoreError::Other(format!("malformed {what}").into())
}

/// Errors that say "try again later" rather than "this request is wrong".
fn is_transient(code: Option<&str>) -> bool {
    matches!(
        code,
        // SQLite busy/locked (primary and extended codes); MySQL SQLSTATEs for deadlock,
        // too many connections and a server going away; PostgreSQL's deadlock, too many
        // connections, a server shutting down or starting, and its connection exceptions.
        Some(
            "5" | "6"
                | "261"
                | "517"
                | "40001"
                | "40P01"
                | "08004"
                | "08S01"
                | "53300"
                | "57P01"
                | "57P02"
                | "57P03"
                | "08000"
                | "08003"
                | "08006"
                | "08001"
        )
    )
}

/// Attempts of one operation when its transaction meets a deadlock or a serialization
/// failure; the database rolled each failed attempt back, so trying again is safe.
const RETRY_ATTEMPTS: u32 = 5;

/// Deadlocks and serialization failures: the transaction was rolled back and may simply be
/// run again. MySQL/MariaDB: 1213 (SQLSTATE 40001); PostgreSQL: 40001 and 40P01; SQLite:
/// a snapshot that cannot be upgraded (517), where the busy handler does not wait.
fn is_retryable(err: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = err else {
        return false;
    };
    matches!(db.code().as_deref(), Some("40001" | "40P01" | "517"))
        || db.message().contains("Deadlock found")
}

/// A few milliseconds, doubling, with full jitter: two transactions that deadlocked do not
/// meet again in the same step.
fn retry_pause(attempt: u32) -> Duration {
    let ceiling_ms = 4u64 << attempt.min(6);
    Duration::from_millis(rand::random_range(1..=ceiling_ms))
}

macro_rules! sql_backend {
    (
        $(#[$doc:meta])*
        $name:ident, $db:ty, begin: $begin:literal, id: $id:ty, at_run_time: $at_run_time:expr
    ) => {
        $(#[$doc])*
        pub struct $name {
            pub(super) pool: Pool<$db>,
            pub(super) breaker: Breaker,
            pub(super) metrics: Metrics,
            pub(super) clock: Arc<dyn Clock>,
            #[allow(dead_code, reason = "SQLite derives its email keys without the database")]
            pub(super) email_keys: super::email_key::EmailKeys,
        }

        impl $name {
            pub(super) fn from_pool(pool: Pool<$db>, metrics: Metrics, clock: Arc<dyn Clock>) -> Self {
                Self { pool, breaker: Breaker::new(BREAKER_PAUSE), metrics, clock, email_keys: Default::default() }
            }

            /// `updated_at`/`created_at` are Unix milliseconds.
            pub(super) fn now_millis(&self) -> i64 {
                i64::try_from(self.clock.now_millis()).unwrap_or(i64::MAX)
            }

            /// A statement put together at run time, in the dialect's placeholders.
            pub(super) fn dialect(sql: String) -> String {
                let at_run_time: fn(String) -> String = $at_run_time;
                at_run_time(sql)
            }

            /// An id that cannot be bound is one no row can have.
            pub(super) fn bind_id(id: CustomerId) -> Option<$id> {
                <$id>::try_from(id.0).ok()
            }

            /// Runs one database operation (a statement or a whole transaction) behind the
            /// breaker. `op` makes a fresh attempt each time it is called: a deadlock or a
            /// serialization failure, which rolled the attempt back, is retried at once
            /// (the one retry policy of every transaction: `RETRY_ATTEMPTS`, with jitter).
            pub(super) async fn run<T, Fut>(
                &self,
                operation: &'static str,
                mut op: impl FnMut() -> Fut,
            ) -> StoreResult<T>
            where
                Fut: Future<Output = Result<T, sqlx::Error>>,
            {
                if self.breaker.is_open() {
                    return Err(StoreError::Unavailable("database unreachable (recent failure)".into()));
                }
                let timer = self.metrics.db_query_duration.with_label_values(&[operation]).start_timer();
                let span = tracing::info_span!(
                    "db",
                    otel.name = %format_args!("db {operation}"),
                    otel.kind = "client",
                    db.system = stringify!($db),
                    db.operation = operation,
                );
                let mut attempt = 1;
                let outcome = loop {
                    let outcome = tracing::Instrument::instrument(op(), span.clone()).await;
                    match outcome {
                        Err(err) if attempt < RETRY_ATTEMPTS && is_retryable(&err) => {
                            tracing::debug!(operation, attempt, error = %err, "retrying a rolled-back transaction");
                            tokio::time::sleep(retry_pause(attempt)).await;
                            attempt += 1;
                        }
                        outcome => break outcome,
                    }
                };
                timer.observe_duration();
                let idle = i64::try_from(self.pool.num_idle()).unwrap_or(i64::MAX);
                self.metrics.db_pool_idle.set(idle);
                self.metrics.db_pool_in_use.set(i64::from(self.pool.size()) - idle);
                match outcome {
                    Ok(value) => {
                        self.breaker.reset();
                        Ok(value)
                    }
                    Err(err) => {
                        let unreachable = matches!(
                            err,
                            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolClosed
                        ) || (matches!(err, sqlx::Error::PoolTimedOut) && self.pool.size() == 0);
                        if unreachable {
                            self.breaker.trip();
                        }
                        Err(classify(err))
                    }
                }
            }

            pub(super) async fn update_returning_previous<T: Send>(
                &self,
                operation: &'static str,
                id: CustomerId,
                select: &'static str,
                decode: impl Fn(<$db as sqlx::Database>::Row) -> Result<T, sqlx::Error> + Send + Sync,
                update: impl for<'q> Fn(
                    sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
                ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>
                    + Send
                    + Sync,
                update_sql: &'static str,
            ) -> StoreResult<Option<T>> {
                let Some(bound) = Self::bind_id(id) else { return Ok(None) };
                let (decode, update) = (&decode, &update);
                self.run(operation, || async move {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let Some(row) = sqlx::query(select).bind(bound).fetch_optional(&mut *tx).await? else {
                        tx.rollback().await?;
                        return Ok(None);
                    };
                    let previous = decode(row)?;
                    update(sqlx::query(update_sql)).bind(self.now_millis()).bind(bound).execute(&mut *tx).await?;
                    tx.commit().await?;
                    Ok(Some(previous))
                })
                .await
            }
        }
    };
}

sql_backend!(
    /// SQLite, the embedded default. `BEGIN IMMEDIATE` takes the write lock up front, so a
    /// read-then-update transaction never fails to upgrade its lock.
    SqliteStore, Sqlite, begin: "BEGIN IMMEDIATE", id: i64, at_run_time: |sql| sql
);

sql_backend!(
    /// MySQL or MariaDB. The row is locked while its previous value is read.
    MySqlStore, MySql, begin: "BEGIN", id: u64, at_run_time: |sql| sql
);

sql_backend!(
    /// PostgreSQL. Ids are `BIGINT` (a Sonyflake id has 63 bits); the row is locked while
    /// its previous value is read.
    PgStore, Postgres, begin: "BEGIN", id: i64, at_run_time: |sql| super::dialect::numbered_at_run_time(&sql)
);

/// Writes one store macro's implementation for each backend, with what differs between
/// their dialects: how a write transaction starts, how a read locks its row, the type an
/// id is bound as, how a literal statement is written (`sql`: `?` or `$1`), and how a
/// column is compared with an email (the comparison the unique index of `email` uses).
macro_rules! for_each_dialect {
    ($store:ident) => {
        $store!(SqliteStore, sqlx::Sqlite, begin: "BEGIN IMMEDIATE", lock: "", id: i64,
            sql: as_written, email_eq: "email = ?");
        $store!(MySqlStore, sqlx::MySql, begin: "BEGIN", lock: " FOR UPDATE", id: u64,
            sql: as_written, email_eq: "email = ?");
        $store!(PgStore, sqlx::Postgres, begin: "BEGIN", lock: " FOR UPDATE", id: i64,
            sql: numbered, email_eq: "lower(email) = lower(?)");
    };
}
pub(super) use for_each_dialect;

impl SqliteStore {
    pub async fn open(
        target: &SqliteTarget,
        settings: &PoolLimits,
        metrics: Metrics,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let (options, max_open, min_idle) = match target {
            SqliteTarget::File(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        anyhow::anyhow!("cannot create data directory {}: {e}", dir.display())
                    })?;
                }
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true);
                (
                    options,
                    settings.max_open,
                    settings.max_idle.min(settings.max_open),
                )
            }
            // Every connection to :memory: is a database of its own: keep exactly one.
            SqliteTarget::Memory => (SqliteConnectOptions::from_str("sqlite::memory:")?, 1, 1),
        };
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            // 256 KiB of page cache per connection (SQLite's default is 2 MiB): the hot rows are
            // in the service's own cache anyway.
            .pragma("cache_size", "-256");
        let mut pool = SqlitePoolOptions::new()
            .max_connections(max_open)
            .min_connections(min_idle)
            .acquire_timeout(settings.acquire_timeout);
        if *target == SqliteTarget::Memory {
            pool = pool.idle_timeout(None).max_lifetime(None);
        }
        let pool = pool.connect_with(options).await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Ok(Self::from_pool(pool, metrics, clock))
    }
}

impl MySqlStore {
    pub async fn open(
        options: MySqlConnectOptions,
        settings: &PoolLimits,
        metrics: Metrics,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let pool = MySqlPoolOptions::new()
            .max_connections(settings.max_open)
            .min_connections(settings.max_idle.min(settings.max_open))
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to MySQL: {e}"))?;
        migrate_mysql(&pool).await?;
        Ok(Self::from_pool(pool, metrics, clock))
    }
}

/// Replicas starting together must not both apply a migration. sqlx's own lock asks for
/// `GET_LOCK(name, -1)`, which MariaDB does not take as "wait forever", so the lock is
/// taken here, on the connection that runs the migrations.
async fn migrate_mysql(pool: &Pool<MySql>) -> anyhow::Result<()> {
    const LOCK: &str = "saga-account-migrations";
    let mut conn = pool.acquire().await?;
    let locked: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 60)")
        .bind(LOCK)
        .fetch_one(&mut *conn)
        .await?;
    if locked != Some(1) {
        anyhow::bail!("another replica held the migration lock for 60 s");
    }
    let mut migrator = sqlx::migrate!("migrations/mysql");
    migrator.set_locking(false);
    let result = migrator.run(&mut *conn).await;
    let _ = sqlx::query("SELECT RELEASE_LOCK(?)")
        .bind(LOCK)
        .execute(&mut *conn)
        .await;
    Ok(result?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_key_violations_are_told_apart_from_duplicates() {
        assert!(names_primary_key("Duplicate entry '1' for key 'PRIMARY'"));
        assert!(names_primary_key(
            "Duplicate entry '1' for key 'customers.PRIMARY'"
        ));
        assert!(!names_primary_key(
            "Duplicate entry 'PRIMARY@x.io' for key 'email'"
        ));
        assert!(names_primary_key("UNIQUE constraint failed: customers.id"));
        assert!(!names_primary_key(
            "UNIQUE constraint failed: customers.email"
        ));
    }
}
