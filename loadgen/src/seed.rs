//! Fills a database with customers quickly: one bcrypt hash for all, multi-row inserts in
//! transactions, not one HTTP signup per row. Seeded customers are `seed<N>@load.test` with
//! the password `load-password-1`.

use std::time::Instant;

use saga_account::{
    domain::clock::{Clock, SystemClock},
    service::idgen::IdGenerator,
    storage::store::{self, DatabaseUrl, PoolSettings},
};

const BATCH: usize = 500;
/// Reserved for seeding, so that seeded IDs never collide with a service's.
const SEED_MACHINE_ID: u16 = u16::MAX;

pub async fn seed(dsn: &str, customers: u64, start_at: u64) -> anyhow::Result<()> {
    let url = DatabaseUrl::parse(dsn, std::path::Path::new("data"))?;
    let pool = PoolSettings {
        max_open: 2,
        max_idle: 1,
        acquire_timeout: std::time::Duration::from_secs(30),
    };
    // Creates or upgrades the schema first.
    store::migrate(&url, &pool).await?;
    let hash =
        bcrypt::hash_with_result("load-password-1", saga_account::service::auth::BCRYPT_COST)?
            .format_for_version(bcrypt::Version::TwoA);
    let ids = IdGenerator::new(SEED_MACHINE_ID, std::sync::Arc::new(SystemClock));
    let started = Instant::now();
    let placeholders = |rows: usize| vec!["(?, TRUE, ?, ?, ?, ?, ?, ?, ?, ?)"; rows].join(", ");
    let now = i64::try_from(SystemClock.now_millis())?;
    macro_rules! fill {
        ($pool:expr, $id:ty, $dialect:expr) => {{
            let pool = $pool;
            let mut next = start_at;
            while next < start_at + customers {
                let rows = usize::try_from((start_at + customers - next).min(BATCH as u64))?;
                let sql = $dialect(format!(
                    "INSERT INTO customers (id, active, first_name, last_name, email, address, phone_number, \
                     bcrypted_password, updated_at, created_at) VALUES {}",
                    placeholders(rows)
                ));
                let mut query = sqlx::query(&sql);
                for n in next..next + rows as u64 {
                    let id = <$id>::try_from(ids.next_id()?)?;
                    query = query
                        .bind(id)
                        .bind("Seed")
                        .bind(format!("Customer{n}"))
                        .bind(format!("seed{n}@load.test"))
                        .bind("1 Load Street")
                        .bind(format!("s{n}"))
                        .bind(hash.as_bytes())
                        .bind(now)
                        .bind(now);
                }
                let mut tx = pool.begin().await?;
                query.execute(&mut *tx).await?;
                tx.commit().await?;
                next += rows as u64;
                if next % 100_000 == 0 {
                    eprintln!("  {next} customers, {:.0} rows/s", (next - start_at) as f64 / started.elapsed().as_secs_f64());
                }
            }
            pool.close().await;
        }};
    }
    match &url {
        DatabaseUrl::Sqlite(store::SqliteTarget::File(path)) => {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Off);
            fill!(
                sqlx::SqlitePool::connect_with(options).await?,
                i64,
                as_written
            )
        }
        DatabaseUrl::Sqlite(store::SqliteTarget::Memory) => {
            anyhow::bail!("seeding :memory: is pointless")
        }
        DatabaseUrl::MySql(options) => fill!(
            sqlx::MySqlPool::connect_with((**options).clone()).await?,
            u64,
            as_written
        ),
        DatabaseUrl::Postgres(options) => fill!(
            sqlx::PgPool::connect_with((**options).clone()).await?,
            i64,
            numbered
        ),
    }
    println!(
        "seeded {customers} customers (seed{start_at}..seed{}@load.test) in {:.1} s",
        start_at + customers - 1,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes `count` revocations straight into the service's revocation feed (for measuring
/// `Auth` and memory with a large revocation set): random session ids whose access tokens
/// would live another hour. Every replica reads them at its next poll.
pub async fn seed_revocations(dsn: &str, count: u64, age_secs: i64) -> anyhow::Result<()> {
    let url = DatabaseUrl::parse(dsn, std::path::Path::new("data"))?;
    let pool = PoolSettings {
        max_open: 2,
        max_idle: 1,
        acquire_timeout: std::time::Duration::from_secs(30),
    };
    store::migrate(&url, &pool).await?;
    let started = Instant::now();
    let now_ms = i64::try_from(SystemClock.now_millis())? - age_secs * 1000;
    let until = SystemClock.now_secs() + 3600;
    macro_rules! fill {
        ($pool:expr, $dialect:expr) => {{
            let pool = $pool;
            let mut done = 0u64;
            while done < count {
                let rows = usize::try_from((count - done).min(BATCH as u64))?;
                let sql = $dialect(format!(
                    "INSERT INTO session_revocations (session_id, customer_id, revoked_at, access_until) VALUES {}",
                    vec!["(?, 0, ?, ?)"; rows].join(", ")
                ));
                let mut query = sqlx::query(&sql);
                for _ in 0..rows {
                    query = query.bind(rand::random::<[u8; 16]>().to_vec()).bind(now_ms).bind(until);
                }
                query.execute(&pool).await?;
                done += rows as u64;
            }
            pool.close().await;
        }};
    }
    match &url {
        DatabaseUrl::Sqlite(store::SqliteTarget::File(path)) => {
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
            fill!(sqlx::SqlitePool::connect_with(options).await?, as_written)
        }
        DatabaseUrl::Sqlite(store::SqliteTarget::Memory) => {
            anyhow::bail!("seeding :memory: is pointless")
        }
        DatabaseUrl::MySql(options) => {
            fill!(
                sqlx::MySqlPool::connect_with((**options).clone()).await?,
                as_written
            )
        }
        DatabaseUrl::Postgres(options) => {
            fill!(
                sqlx::PgPool::connect_with((**options).clone()).await?,
                numbered
            )
        }
    }
    println!(
        "seeded {count} revocations in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The first `count` seeded customers, with tokens minted locally with the service's secret
/// (so that reads need no login first).
pub async fn seeded_customers(
    dsn: &str,
    secret: &str,
    count: usize,
) -> anyhow::Result<Vec<crate::scenarios::Customer>> {
    use saga_account::service::auth::{Claims, TokenCodec, TokenKind};
    use serde_json::json;
    let url = DatabaseUrl::parse(dsn, std::path::Path::new("data"))?;
    let query = "SELECT id, email FROM customers WHERE email LIKE 'seed%@load.test'";
    let rows: Vec<(u64, String)> = match &url {
        DatabaseUrl::Sqlite(store::SqliteTarget::File(path)) => {
            let pool = sqlx::SqlitePool::connect_with(
                sqlx::sqlite::SqliteConnectOptions::new().filename(path),
            )
            .await?;
            sqlx::query_as(query).fetch_all(&pool).await?
        }
        DatabaseUrl::Sqlite(store::SqliteTarget::Memory) => {
            anyhow::bail!("no seeded customers in :memory:")
        }
        DatabaseUrl::MySql(options) => {
            let pool = sqlx::MySqlPool::connect_with((**options).clone()).await?;
            sqlx::query_as(query).fetch_all(&pool).await?
        }
        DatabaseUrl::Postgres(options) => {
            let pool = sqlx::PgPool::connect_with((**options).clone()).await?;
            let rows: Vec<(i64, String)> = sqlx::query_as(query).fetch_all(&pool).await?;
            rows.into_iter()
                .filter_map(|(id, email)| Some((u64::try_from(id).ok()?, email)))
                .collect()
        }
    };
    let codec = TokenCodec::new(secret.as_bytes());
    let exp = SystemClock.now_secs() + 24 * 3600;
    let mut customers: Vec<_> = rows
        .into_iter()
        .filter_map(|(id, email)| {
            let n: u64 = email.strip_prefix("seed")?.strip_suffix("@load.test")?.parse().ok()?;
            let id = saga_account::domain::CustomerId(id);
            Some((n, crate::scenarios::Customer::new(
                id.0,
                email.clone(),
                "load-password-1".into(),
                codec.mint(&Claims::legacy(id, TokenKind::Access, exp)),
                json!({"firstname": "Seed", "lastname": format!("Customer{n}"), "email": email}),
                json!({"address": "1 Load Street", "phone_number": format!("s{n}")}),
            )))
        })
        .collect();
    customers.sort_by_key(|(n, _)| *n);
    anyhow::ensure!(
        customers.len() >= count,
        "only {} seeded customers in the database",
        customers.len()
    );
    Ok(customers.into_iter().take(count).map(|(_, c)| c).collect())
}

/// A statement as SQLite and MySQL take it.
fn as_written(sql: String) -> String {
    sql
}

/// A statement with PostgreSQL's numbered placeholders (`$1`, `$2`, …) for `?`.
fn numbered(sql: String) -> String {
    let mut out = String::with_capacity(sql.len() + sql.len() / 2);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}
