//! Storage behind traits, so that the cache can wrap the customers and the backend can be
//! chosen at run time from `DB_DSN`: SQLite (embedded default), MySQL/MariaDB or
//! PostgreSQL. Every driver is always compiled in; one store value serves every trait.
//!
//! The traits, one file per table family (`customers`, `sessions`, `mail`, `keys`, `mfa`), and
//! `error`; `sql` implements all of them for every backend; `dsn` parses `DB_DSN`.

mod customers;
mod dsn;
mod error;
mod feed;
mod keys;
mod mail;
mod mfa;
mod sessions;
mod sql;

use std::{sync::Arc, time::Duration};

use crate::{
    domain::clock::{Clock, SystemClock},
    metrics::Metrics,
};

pub use customers::{CustomerStore, DeletedCustomer};
pub use error::{StoreError, StoreResult};
pub use feed::InvalidationFeed;
pub use keys::{KeyStore, StoredKey};
pub use mail::{
    ClaimedMail, EmailChange, IssuedToken, NewMail, OutboxStats, OutboxStore, RecoveryStore,
    ResetOutcome, RevertOutcome, TokenRecord,
};
pub use mfa::{MfaChallenge, MfaStore, StoredTotp};
pub use sessions::{Rotation, SessionStore, StartRefused, SweepCounts, Which};

pub use dsn::{DatabaseUrl, DsnError, SqliteTarget};
pub use sql::{MySqlStore, PgStore, PoolLimits, SqliteStore};

/// One database, seen through each of its traits.
#[derive(Clone)]
pub struct Stores {
    pub customers: Arc<dyn CustomerStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub keys: Arc<dyn KeyStore>,
    pub outbox: Arc<dyn OutboxStore>,
    pub recovery: Arc<dyn RecoveryStore>,
    /// TOTP secrets, recovery codes and second steps in flight (SPEC section 16).
    pub mfa: Arc<dyn MfaStore>,
    /// The cache-invalidation feed of replicas without Redis (SPEC rule 15.7).
    pub feed: Arc<dyn InvalidationFeed>,
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

impl From<&PoolSettings> for PoolLimits {
    fn from(settings: &PoolSettings) -> Self {
        Self {
            max_open: settings.max_open,
            max_idle: settings.max_idle,
            acquire_timeout: settings.acquire_timeout,
        }
    }
}

/// Opens the store that `url` names and brings its schema up to date.
pub async fn open(
    url: &DatabaseUrl,
    pool: &PoolSettings,
    metrics: Metrics,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Stores> {
    let limits = pool.into();
    Ok(match url {
        DatabaseUrl::Sqlite(path) => Stores::of(Arc::new(
            SqliteStore::open(path, &limits, metrics, clock).await?,
        )),
        DatabaseUrl::MySql(options) => Stores::of(Arc::new(
            MySqlStore::open((**options).clone(), &limits, metrics, clock).await?,
        )),
        DatabaseUrl::Postgres(options) => Stores::of(Arc::new(
            PgStore::open((**options).clone(), &limits, metrics, clock).await?,
        )),
    })
}

impl Stores {
    fn of<S>(store: Arc<S>) -> Self
    where
        S: CustomerStore
            + SessionStore
            + KeyStore
            + OutboxStore
            + RecoveryStore
            + MfaStore
            + InvalidationFeed,
        S: 'static,
    {
        Stores {
            customers: store.clone(),
            sessions: store.clone(),
            keys: store.clone(),
            outbox: store.clone(),
            feed: store.clone(),
            mfa: store.clone(),
            recovery: store,
        }
    }
}

/// Only applies the migrations (the `migrate` command).
pub async fn migrate(url: &DatabaseUrl, pool: &PoolSettings) -> anyhow::Result<()> {
    let stores = open(url, pool, Metrics::new("migrate"), Arc::new(SystemClock)).await?;
    stores.customers.close().await;
    Ok(())
}
