//! Storage behind traits, so that the cache can wrap the customers and the backend can be
//! chosen at run time from `DB_DSN`: SQLite (embedded default) or MySQL/MariaDB. Both
//! drivers are always compiled in; one store value serves every trait.

mod dsn;
mod keys;
mod mail;
mod sessions;
mod sql;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;

use crate::{
    domain::clock::{Clock, SystemClock},
    metrics::Metrics,
};

use crate::domain::{
    CheckResult, Credentials, CustomerId, Email, Error, InternalError, NewCustomer, PersonalInfo,
    Revocation, ShippingInfo, Unavailable,
};

pub use keys::{KeyStore, StoredKey};
pub use mail::{
    ClaimedMail, IssuedToken, NewMail, OutboxStats, OutboxStore, RecoveryStore, ResetOutcome,
    TokenRecord,
};
pub use sessions::{Rotation, SessionStore, SweepCounts, Which};

pub use dsn::{DatabaseUrl, DsnError, SqliteTarget};
pub use sql::{MySqlStore, SqliteStore};

/// What can go wrong in storage, by what the caller does about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The email or phone number belongs to another customer.
    #[error("duplicate entry")]
    Duplicate,
    /// The primary key is taken: two generators produced one ID. The caller retries with a new one.
    #[error("customer id already taken")]
    IdTaken,
    /// The database cannot be reached right now.
    #[error("database unavailable")]
    Unavailable(#[source] InternalError),
    #[error("database error")]
    Other(#[source] InternalError),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate => Error::DuplicateEntry,
            StoreError::Unavailable(cause) => Error::Unavailable(Unavailable::Database(cause)),
            e @ StoreError::IdTaken => Error::internal(e),
            StoreError::Other(cause) => Error::Internal(cause),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The customer table. Lookups return `None` for an unknown customer; updates return the
/// previous value (so that a cache knows what became stale) or `None` for an unknown customer.
#[async_trait]
pub trait CustomerStore: Send + Sync + 'static {
    async fn insert(&self, customer: &NewCustomer) -> StoreResult<()>;
    async fn credentials(&self, email: &Email) -> StoreResult<Option<Credentials>>;
    async fn check(&self, id: CustomerId) -> StoreResult<Option<CheckResult>>;
    async fn personal_info(&self, id: CustomerId) -> StoreResult<Option<PersonalInfo>>;
    async fn shipping_info(&self, id: CustomerId) -> StoreResult<Option<ShippingInfo>>;
    async fn update_personal_info(
        &self,
        id: CustomerId,
        info: &PersonalInfo,
    ) -> StoreResult<Option<PersonalInfo>>;
    async fn update_shipping_info(
        &self,
        id: CustomerId,
        info: &ShippingInfo,
    ) -> StoreResult<Option<ShippingInfo>>;
    /// Sets a customer's `active` flag; returns the previous state, `None` if unknown.
    async fn set_active(&self, id: CustomerId, active: bool) -> StoreResult<Option<bool>>;
    /// Replaces the password hash; returns the customer's email, `None` if unknown.
    async fn update_password(&self, id: CustomerId, hash: &str) -> StoreResult<Option<Email>>;
    /// Removes the customer and their sessions in one transaction; the live sessions'
    /// revocations are recorded (their access tokens are refused until they expire).
    /// `None` if unknown.
    async fn delete(&self, id: CustomerId, now_ms: i64) -> StoreResult<Option<DeletedCustomer>>;
    /// One round trip to the database, for readiness.
    async fn ping(&self) -> StoreResult<()>;
    /// Closes the pool, waiting for connections in use to be returned.
    async fn close(&self);
}

/// What an account deletion removed.
#[derive(Debug, Clone)]
pub struct DeletedCustomer {
    pub personal: PersonalInfo,
    pub revocations: Vec<Revocation>,
}

/// One database, seen through each of its traits.
#[derive(Clone)]
pub struct Stores {
    pub customers: Arc<dyn CustomerStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub keys: Arc<dyn KeyStore>,
    pub outbox: Arc<dyn OutboxStore>,
    pub recovery: Arc<dyn RecoveryStore>,
}

/// Where the data lives, as configured.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `DB_DSN`: empty = SQLite in `data_dir`.
    pub dsn: crate::domain::Secret,
    /// The embedded SQLite database, the generated JWT secret and `mail/`.
    pub data_dir: std::path::PathBuf,
}

/// Pool settings taken from the configuration.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_open: u32,
    pub max_idle: u32,
    /// How long a request waits for a connection before the database counts as unreachable.
    pub acquire_timeout: Duration,
}

/// Opens the store that `url` names and brings its schema up to date.
pub async fn open(
    url: &DatabaseUrl,
    pool: &PoolSettings,
    metrics: Metrics,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Stores> {
    Ok(match url {
        DatabaseUrl::Sqlite(path) => {
            let store = Arc::new(SqliteStore::open(path, pool, metrics, clock).await?);
            Stores {
                customers: store.clone(),
                sessions: store.clone(),
                keys: store.clone(),
                outbox: store.clone(),
                recovery: store,
            }
        }
        DatabaseUrl::MySql(options) => {
            let store =
                Arc::new(MySqlStore::open((**options).clone(), pool, metrics, clock).await?);
            Stores {
                customers: store.clone(),
                sessions: store.clone(),
                keys: store.clone(),
                outbox: store.clone(),
                recovery: store,
            }
        }
    })
}

/// Only applies the migrations (the `migrate` command).
pub async fn migrate(url: &DatabaseUrl, pool: &PoolSettings) -> anyhow::Result<()> {
    let stores = open(url, pool, Metrics::new("migrate"), Arc::new(SystemClock)).await?;
    stores.customers.close().await;
    Ok(())
}
