//! The SQL stores. MySQL and SQLite run the same statements (both take `?` placeholders);
//! one macro writes both implementations so that they cannot drift apart. What differs is
//! passed in: how a write transaction starts, how a row is locked, how an id is bound.

use std::{future::Future, str::FromStr, sync::Arc, time::Duration};

use async_trait::async_trait;

use crate::{domain::clock::Clock, metrics::Metrics, storage::breaker::Breaker};
use sqlx::{
    MySql, Pool, Sqlite,
    mysql::{MySqlConnectOptions, MySqlPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

mod keys;
mod mail;
mod sessions;

use super::{
    CustomerStore, DeletedCustomer, PoolSettings, StoreError, StoreResult, dsn::SqliteTarget,
};
use crate::domain::{
    Address, CheckResult, Credentials, CustomerId, Email, Name, NewCustomer, PersonalInfo,
    PhoneNumber, Revocation, ShippingInfo,
};

/// How long requests are refused after the database was found unreachable.
const BREAKER_PAUSE: Duration = Duration::from_millis(500);

/// Turns a driver error into what the caller acts on.
fn classify(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation => {
            if names_primary_key(db.message()) {
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
/// SQLite: "UNIQUE constraint failed: customers.id". The value itself may contain anything,
/// so only the part naming the key is looked at.
fn names_primary_key(message: &str) -> bool {
    if let Some((_, key)) = message.rsplit_once("for key") {
        return key.contains("PRIMARY");
    }
    if let Some((_, columns)) = message.rsplit_once("failed:") {
        return columns.trim() == "customers.id";
    }
    false
}

/// Errors that say "try again later" rather than "this request is wrong".
fn is_transient(code: Option<&str>) -> bool {
    matches!(
        code,
        // SQLite busy/locked (primary and extended codes); MySQL SQLSTATEs for deadlock,
        // too many connections and a server going away.
        Some("5" | "6" | "261" | "517" | "40001" | "08004" | "08S01")
    )
}

macro_rules! sql_store {
    (
        $(#[$doc:meta])*
        $name:ident, $db:ty, begin: $begin:literal, lock: $lock:literal, id: $id:ty
    ) => {
        $(#[$doc])*
        pub struct $name {
            pool: Pool<$db>,
            breaker: Breaker,
            metrics: Metrics,
            clock: Arc<dyn Clock>,
        }

        impl $name {
            fn from_pool(pool: Pool<$db>, metrics: Metrics, clock: Arc<dyn Clock>) -> Self {
                Self { pool, breaker: Breaker::new(BREAKER_PAUSE), metrics, clock }
            }

            /// `updated_at`/`created_at` are Unix milliseconds.
            fn now_millis(&self) -> i64 {
                i64::try_from(self.clock.now_millis()).unwrap_or(i64::MAX)
            }

            /// An id that cannot be bound is one no row can have.
            fn bind_id(id: CustomerId) -> Option<$id> {
                <$id>::try_from(id.0).ok()
            }

            /// Runs one database operation behind the breaker.
            async fn run<T>(
                &self,
                operation: &'static str,
                op: impl Future<Output = Result<T, sqlx::Error>>,
            ) -> StoreResult<T> {
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
                let outcome = tracing::Instrument::instrument(op, span).await;
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

            async fn update_returning_previous<T: Send>(
                &self,
                operation: &'static str,
                id: CustomerId,
                select: &'static str,
                decode: impl FnOnce(<$db as sqlx::Database>::Row) -> Result<T, sqlx::Error> + Send,
                update: impl for<'q> FnOnce(
                    sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
                ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>
                    + Send,
                update_sql: &'static str,
            ) -> StoreResult<Option<T>> {
                let Some(bound) = Self::bind_id(id) else { return Ok(None) };
                self.run(operation, async {
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

        #[async_trait]
        impl CustomerStore for $name {
            async fn insert(&self, c: &NewCustomer) -> StoreResult<()> {
                let Some(id) = Self::bind_id(c.id) else {
                    return Err(StoreError::Other("customer id out of range".into()));
                };
                let now = self.now_millis();
                self.run(
                    "insert",
                    sqlx::query(
                        "INSERT INTO customers (id, active, first_name, last_name, email, address, \
                         phone_number, bcrypted_password, updated_at, created_at) \
                         VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(id)
                    .bind(c.personal.first_name.as_str())
                    .bind(c.personal.last_name.as_str())
                    .bind(c.personal.email.as_str())
                    .bind(c.shipping.address.as_str())
                    .bind(c.shipping.phone_number.as_str())
                    .bind(c.bcrypted_password.as_bytes())
                    .bind(now)
                    .bind(now)
                    .execute(&self.pool),
                )
                .await
                .map(drop)
            }

            async fn credentials(&self, email: &Email) -> StoreResult<Option<Credentials>> {
                let row: Option<(u64, Option<bool>, Vec<u8>)> = self
                    .run(
                        "credentials",
                        sqlx::query_as("SELECT id, active, bcrypted_password FROM customers WHERE email = ?")
                            .bind(email.as_str())
                            .fetch_optional(&self.pool),
                    )
                    .await?;
                Ok(row.map(|(id, active, hash)| Credentials {
                    id: CustomerId(id),
                    active: active.unwrap_or(true),
                    // binary(60) pads shorter values with NULs.
                    bcrypted_password: String::from_utf8_lossy(&hash).trim_end_matches('\0').to_owned(),
                }))
            }

            async fn check(&self, id: CustomerId) -> StoreResult<Option<CheckResult>> {
                let Some(id) = Self::bind_id(id) else { return Ok(None) };
                let row: Option<(Option<bool>,)> = self
                    .run(
                        "check",
                        sqlx::query_as("SELECT active FROM customers WHERE id = ?")
                            .bind(id)
                            .fetch_optional(&self.pool),
                    )
                    .await?;
                Ok(row.map(|(active,)| CheckResult { active: active.unwrap_or(true) }))
            }

            async fn personal_info(&self, id: CustomerId) -> StoreResult<Option<PersonalInfo>> {
                let Some(id) = Self::bind_id(id) else { return Ok(None) };
                let row: Option<(String, String, String)> = self
                    .run(
                        "personal_info",
                        sqlx::query_as("SELECT first_name, last_name, email FROM customers WHERE id = ?")
                            .bind(id)
                            .fetch_optional(&self.pool),
                    )
                    .await?;
                Ok(row.map(personal_from_row))
            }

            async fn shipping_info(&self, id: CustomerId) -> StoreResult<Option<ShippingInfo>> {
                let Some(id) = Self::bind_id(id) else { return Ok(None) };
                let row: Option<(String, String)> = self
                    .run(
                        "shipping_info",
                        sqlx::query_as("SELECT address, phone_number FROM customers WHERE id = ?")
                            .bind(id)
                            .fetch_optional(&self.pool),
                    )
                    .await?;
                Ok(row.map(shipping_from_row))
            }

            async fn update_personal_info(
                &self,
                id: CustomerId,
                info: &PersonalInfo,
            ) -> StoreResult<Option<PersonalInfo>> {
                let (first, last, email) = (
                    info.first_name.as_str().to_owned(),
                    info.last_name.as_str().to_owned(),
                    info.email.as_str().to_owned(),
                );
                self.update_returning_previous(
                    "update_personal_info",
                    id,
                    concat!("SELECT first_name, last_name, email FROM customers WHERE id = ?", $lock),
                    |row| sqlx::FromRow::from_row(&row).map(personal_from_row),
                    move |q| q.bind(first).bind(last).bind(email),
                    "UPDATE customers SET first_name = ?, last_name = ?, email = ?, updated_at = ? WHERE id = ?",
                )
                .await
            }

            async fn update_shipping_info(
                &self,
                id: CustomerId,
                info: &ShippingInfo,
            ) -> StoreResult<Option<ShippingInfo>> {
                let (address, phone) =
                    (info.address.as_str().to_owned(), info.phone_number.as_str().to_owned());
                self.update_returning_previous(
                    "update_shipping_info",
                    id,
                    concat!("SELECT address, phone_number FROM customers WHERE id = ?", $lock),
                    |row| sqlx::FromRow::from_row(&row).map(shipping_from_row),
                    move |q| q.bind(address).bind(phone),
                    "UPDATE customers SET address = ?, phone_number = ?, updated_at = ? WHERE id = ?",
                )
                .await
            }

            async fn set_active(&self, id: CustomerId, active: bool) -> StoreResult<Option<bool>> {
                self.update_returning_previous(
                    "set_active",
                    id,
                    concat!("SELECT active FROM customers WHERE id = ?", $lock),
                    |row| {
                        sqlx::FromRow::from_row(&row).map(|(a,): (Option<bool>,)| a.unwrap_or(true))
                    },
                    move |q| q.bind(active),
                    "UPDATE customers SET active = ?, updated_at = ? WHERE id = ?",
                )
                .await
            }

            async fn update_password(&self, id: CustomerId, hash: &str) -> StoreResult<Option<Email>> {
                let hash = hash.to_owned();
                self.update_returning_previous(
                    "update_password",
                    id,
                    concat!("SELECT email FROM customers WHERE id = ?", $lock),
                    |row| sqlx::FromRow::from_row(&row).map(|(email,): (String,)| Email::from_stored(email)),
                    move |q| q.bind(hash.into_bytes()),
                    "UPDATE customers SET bcrypted_password = ?, updated_at = ? WHERE id = ?",
                )
                .await
            }

            async fn upgrade_password(&self, id: CustomerId, verified: &str, hash: &str) -> StoreResult<bool> {
                let Some(bound) = Self::bind_id(id) else { return Ok(false) };
                let done = self
                    .run(
                        "upgrade_password",
                        sqlx::query(
                            "UPDATE customers SET bcrypted_password = ?, updated_at = ? \
                             WHERE id = ? AND bcrypted_password = ?",
                        )
                        .bind(hash.as_bytes())
                        .bind(self.now_millis())
                        .bind(bound)
                        .bind(verified.as_bytes())
                        .execute(&self.pool),
                    )
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete(&self, id: CustomerId, now_ms: i64) -> StoreResult<Option<DeletedCustomer>> {
                let Some(bound) = Self::bind_id(id) else { return Ok(None) };
                self.run("delete_customer", async {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let row: Option<(String, String, String)> = sqlx::query_as(concat!(
                        "SELECT first_name, last_name, email FROM customers WHERE id = ?",
                        $lock
                    ))
                    .bind(bound)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(row) = row else {
                        tx.rollback().await?;
                        return Ok(None);
                    };
                    // The access tokens of its live sessions stay refused until they expire.
                    let live: Vec<(Vec<u8>, i64)> = sqlx::query_as(
                        "SELECT id, access_exp FROM sessions WHERE customer_id = ? \
                         AND revoked_at IS NULL AND access_exp >= ?",
                    )
                    .bind(bound)
                    .bind(now_ms / 1000)
                    .fetch_all(&mut *tx)
                    .await?;
                    let mut revocations = Vec::with_capacity(live.len());
                    for (session, access_exp) in &live {
                        Self::record_revocation(&mut tx, bound, session, *access_exp, now_ms).await?;
                        if let Some(session) = crate::domain::RandomId::from_bytes(session) {
                            revocations.push(Revocation { session, access_until: *access_exp, revoked_at: now_ms });
                        }
                    }
                    sqlx::query("DELETE FROM sessions WHERE customer_id = ?")
                        .bind(bound)
                        .execute(&mut *tx)
                        .await?;
                    // Their tokens and verified address go with them (SPEC section 13).
                    sqlx::query("DELETE FROM mail_tokens WHERE customer_id = ?")
                        .bind(bound)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM email_verifications WHERE customer_id = ?")
                        .bind(bound)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM customers WHERE id = ?")
                        .bind(bound)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(Some(DeletedCustomer { personal: personal_from_row(row), revocations }))
                })
                .await
            }

            async fn ping(&self) -> StoreResult<()> {
                self.run("ping", sqlx::query("SELECT 1").execute(&self.pool)).await.map(drop)
            }

            async fn close(&self) {
                self.pool.close().await;
            }
        }
    };
}

fn personal_from_row((first, last, email): (String, String, String)) -> PersonalInfo {
    PersonalInfo {
        first_name: Name::from_stored(first),
        last_name: Name::from_stored(last),
        email: Email::from_stored(email),
    }
}

fn shipping_from_row((address, phone): (String, String)) -> ShippingInfo {
    ShippingInfo {
        address: Address::from_stored(address),
        phone_number: PhoneNumber::from_stored(phone),
    }
}

sql_store!(
    /// SQLite, the embedded default. `BEGIN IMMEDIATE` takes the write lock up front, so a
    /// read-then-update transaction never fails to upgrade its lock.
    SqliteStore, Sqlite, begin: "BEGIN IMMEDIATE", lock: "", id: i64
);

sql_store!(
    /// MySQL or MariaDB. The row is locked while its previous value is read.
    MySqlStore, MySql, begin: "BEGIN", lock: " FOR UPDATE", id: u64
);

impl SqliteStore {
    pub async fn open(
        target: &SqliteTarget,
        settings: &PoolSettings,
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
        settings: &PoolSettings,
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
