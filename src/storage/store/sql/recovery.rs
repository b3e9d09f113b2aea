//! `RecoveryStore` for the SQL stores, written once: the tokens of reset and verification
//! mails, the reset itself, verified addresses and the account reads.
//!
//! The reset is one transaction: the token row is locked (`FOR UPDATE` on MySQL;
//! `BEGIN IMMEDIATE` takes SQLite's write lock) before it is checked and used up.

use async_trait::async_trait;

use super::backend::{MySqlStore, PgStore, SqliteStore, decode_error, for_each_dialect};
use super::dialect::{as_written, numbered};
use crate::{
    domain::{Account, CustomerId, Email, Name, PersonalInfo, TokenPurpose},
    storage::store::{
        error::{StoreError, StoreResult},
        mail::{EmailChange, IssuedToken, RecoveryStore, ResetOutcome, RevertOutcome, TokenRecord},
    },
};

/// Emails match as the backends' unique indexes match them: ignoring case.
pub(super) fn same_email(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

type AccountRow<Id> = (
    Id,
    String,
    String,
    String,
    Option<bool>,
    Option<i64>,
    Option<String>,
);

fn account_from_row<Id: TryInto<u64>>(row: AccountRow<Id>) -> StoreResult<Account> {
    let (id, first, last, email, active, created_at, verified) = row;
    let id = id.try_into().map_err(|_| decode_error("customer id"))?;
    Ok(Account {
        id: CustomerId(id),
        email_verified: verified.is_some_and(|v| same_email(&v, &email)),
        personal: PersonalInfo {
            first_name: Name::from_stored(first),
            last_name: Name::from_stored(last),
            email: Email::from_stored(email),
        },
        active: active.unwrap_or(true),
        created_at,
    })
}

const ACCOUNT_SELECT: &str = "SELECT c.id, c.first_name, c.last_name, c.email, c.active, c.created_at, \
     v.email FROM customers c LEFT JOIN email_verifications v ON v.customer_id = c.id";

macro_rules! recovery_store {
    ($name:ident, $db:ty, begin: $begin:literal, lock: $lock:literal, id: $id:ty, sql: $q:ident, email_eq: $email_eq:literal) => {
        impl $name {
            /// Uses up the customer's unused tokens of `purpose`, inside `tx`. The customer's
            /// row is locked first (one issue or reset of a customer at a time); the tokens
            /// are then read without a lock and used up by primary key. An `UPDATE … WHERE
            /// customer_id = ?` would take InnoDB gap locks on `mail_tokens_customer`, and
            /// two customers' mails (whose time-ordered ids share the last gap) would
            /// deadlock on the inserts that follow (issue 19, finding 10).
            pub(super) async fn void_tokens_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                customer: $id,
                purpose: &str,
                now_ms: i64,
            ) -> Result<(), sqlx::Error> {
                sqlx::query($q!(concat!("SELECT id FROM customers WHERE id = ?", $lock)))
                    .bind(customer)
                    .fetch_optional(&mut **tx)
                    .await?;
                let unused: Vec<(Vec<u8>,)> = sqlx::query_as(
                    $q!("SELECT token_hash FROM mail_tokens \
                     WHERE customer_id = ? AND purpose = ? AND used_at IS NULL"),
                )
                .bind(customer)
                .bind(purpose)
                .fetch_all(&mut **tx)
                .await?;
                for (hash,) in unused {
                    sqlx::query(
                        $q!("UPDATE mail_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL"),
                    )
                    .bind(now_ms)
                    .bind(hash)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(())
            }

            /// Marks `email` as the customer's verified address, inside `tx`.
            pub(super) async fn mark_verified_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                customer: $id,
                email: &str,
                now_ms: i64,
            ) -> Result<(), sqlx::Error> {
                // Delete and insert: the same statements on both backends (no upsert dialect).
                sqlx::query($q!("DELETE FROM email_verifications WHERE customer_id = ?"))
                    .bind(customer)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query(
                    $q!("INSERT INTO email_verifications (customer_id, email, verified_at) VALUES (?, ?, ?)"),
                )
                .bind(customer)
                .bind(email)
                .bind(now_ms)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }
        }

        #[async_trait]
        impl RecoveryStore for $name {
            async fn issue_token(&self, token: &IssuedToken, void_older: bool) -> StoreResult<()> {
                let Some(customer) = Self::bind_id(token.customer) else {
                    return Err(StoreError::Other("customer id out of range".into()));
                };
                self.run("token_issue", || async move {
                    let mut tx = self.pool.begin_with($begin).await?;
                    if void_older {
                        Self::void_tokens_in(&mut tx, customer, token.purpose.label(), token.created_at).await?;
                    }
                    sqlx::query(
                        $q!("INSERT INTO mail_tokens (token_hash, purpose, customer_id, email, created_at, expires_at) \
                         VALUES (?, ?, ?, ?, ?, ?)"),
                    )
                    .bind(token.hash.as_slice())
                    .bind(token.purpose.label())
                    .bind(customer)
                    .bind(token.email.as_str())
                    .bind(token.created_at)
                    .bind(token.expires_at)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await
                })
                .await
            }

            async fn find_token(
                &self,
                hash: &[u8; 32],
                purpose: TokenPurpose,
            ) -> StoreResult<Option<TokenRecord>> {
                let row: Option<($id, String, i64, Option<i64>)> = self
                    .run(
                        "token_find",
                        || sqlx::query_as(
                            $q!("SELECT customer_id, email, expires_at, used_at FROM mail_tokens \
                             WHERE token_hash = ? AND purpose = ?"),
                        )
                        .bind(hash.as_slice())
                        .bind(purpose.label())
                        .fetch_optional(&self.pool),
                    )
                    .await?;
                row.map(|(customer, email, expires_at, used_at)| {
                    Ok(TokenRecord {
                        customer: CustomerId(
                            customer.try_into().map_err(|_| decode_error("customer id"))?,
                        ),
                        email: Email::from_stored(email),
                        expires_at,
                        used_at,
                    })
                })
                .transpose()
            }

            async fn reset_password(
                &self,
                hash: &[u8; 32],
                customer: CustomerId,
                password_hash: &str,
                now_ms: i64,
            ) -> StoreResult<ResetOutcome> {
                let Some(customer) = Self::bind_id(customer) else {
                    return Ok(ResetOutcome::Refused);
                };
                self.run("token_reset", || async move {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let token: Option<($id, String, i64, Option<i64>)> = sqlx::query_as($q!(concat!(
                        "SELECT customer_id, email, expires_at, used_at FROM mail_tokens \
                         WHERE token_hash = ? AND purpose = 'reset'",
                        $lock
                    )))
                    .bind(hash.as_slice())
                    .fetch_optional(&mut *tx)
                    .await?;
                    let current: Option<(String, Option<bool>)> = sqlx::query_as($q!(concat!(
                        "SELECT email, active FROM customers WHERE id = ?",
                        $lock
                    )))
                    .bind(customer)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let usable = match (&token, &current) {
                        (Some((owner, email, expires_at, None)), Some((current, active))) => {
                            *owner == customer
                                && *expires_at > now_ms
                                && active.unwrap_or(true)
                                && same_email(email, current)
                        }
                        _ => false,
                    };
                    let Some((email, _)) = current.filter(|_| usable) else {
                        tx.rollback().await?;
                        return Ok(ResetOutcome::Refused);
                    };
                    // Uses up this token and voids every other reset token of the customer.
                    Self::void_tokens_in(&mut tx, customer, "reset", now_ms).await?;
                    sqlx::query(
                        $q!("UPDATE customers SET bcrypted_password = ?, \
                         credential_generation = credential_generation + 1, updated_at = ? WHERE id = ?"),
                    )
                    .bind(password_hash.as_bytes())
                    .bind(now_ms)
                    .bind(customer)
                    .execute(&mut *tx)
                    .await?;
                    // The link reached this address: it is the customer's.
                    Self::mark_verified_in(&mut tx, customer, &email, now_ms).await?;
                    tx.commit().await?;
                    Ok(ResetOutcome::Done(Email::from_stored(email)))
                })
                .await
            }

            async fn verify_email(&self, hash: &[u8; 32], now_ms: i64) -> StoreResult<bool> {
                self.run("token_verify", || async move {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let token: Option<($id, String, i64, Option<i64>)> = sqlx::query_as($q!(concat!(
                        "SELECT customer_id, email, expires_at, used_at FROM mail_tokens \
                         WHERE token_hash = ? AND purpose = 'verify'",
                        $lock
                    )))
                    .bind(hash.as_slice())
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some((customer, email, _expires_at, used_at)) =
                        token.filter(|t| t.2 > now_ms)
                    else {
                        tx.rollback().await?;
                        return Ok(false);
                    };
                    // The customer's row locked, then its verified address (PostgreSQL locks
                    // no row of the nullable side of an outer join).
                    let current: Option<(String,)> = sqlx::query_as($q!(concat!(
                        "SELECT email FROM customers WHERE id = ?",
                        $lock
                    )))
                    .bind(customer)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let verified: Option<(String,)> = sqlx::query_as($q!(
                        "SELECT email FROM email_verifications WHERE customer_id = ?"
                    ))
                    .bind(customer)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let current = current.map(|(email,)| (email, verified.map(|(v,)| v)));
                    let Some((current, verified)) = current.filter(|(c, _)| same_email(c, &email))
                    else {
                        // The customer is gone or changed their email since the mail.
                        tx.rollback().await?;
                        return Ok(false);
                    };
                    if used_at.is_some() {
                        // Idempotent: a second click on the same, unchanged email.
                        tx.rollback().await?;
                        return Ok(verified.is_some_and(|v| same_email(&v, &current)));
                    }
                    sqlx::query($q!("UPDATE mail_tokens SET used_at = ? WHERE token_hash = ?"))
                        .bind(now_ms)
                        .bind(hash.as_slice())
                        .execute(&mut *tx)
                        .await?;
                    Self::mark_verified_in(&mut tx, customer, &current, now_ms).await?;
                    tx.commit().await?;
                    Ok(true)
                })
                .await
            }

            async fn account(&self, id: CustomerId) -> StoreResult<Option<Account>> {
                let Some(id) = Self::bind_id(id) else { return Ok(None) };
                let sql = Self::dialect(format!("{ACCOUNT_SELECT} WHERE c.id = ?"));
                let row: Option<AccountRow<$id>> = self
                    .run("account", || sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool))
                    .await?;
                row.map(account_from_row).transpose()
            }

            async fn account_by_email(&self, email: &Email) -> StoreResult<Option<Account>> {
                let sql = Self::dialect(format!(
                    "{ACCOUNT_SELECT} WHERE c.id = (SELECT id FROM customers WHERE {})",
                    $email_eq
                ));
                let row: Option<AccountRow<$id>> = self
                    .run(
                        "account_by_email",
                        || sqlx::query_as(&sql).bind(email.as_str()).fetch_optional(&self.pool),
                    )
                    .await?;
                row.map(account_from_row).transpose()
            }

            async fn email_change(&self, id: CustomerId) -> StoreResult<Option<EmailChange>> {
                self.email_change_of(id).await
            }

            async fn revert_email(&self, hash: &[u8; 32], now_ms: i64) -> StoreResult<RevertOutcome> {
                self.revert_email_with(hash, now_ms).await
            }

            async fn forget_verification(&self, id: CustomerId) -> StoreResult<()> {
                let Some(id) = Self::bind_id(id) else { return Ok(()) };
                self.run(
                    "forget_verification",
                    || sqlx::query($q!("DELETE FROM email_verifications WHERE customer_id = ?"))
                        .bind(id)
                        .execute(&self.pool),
                )
                .await
                .map(drop)
            }

            async fn sweep_tokens(&self, before_ms: i64) -> StoreResult<u64> {
                self.run(
                    "token_sweep",
                    || sqlx::query($q!("DELETE FROM mail_tokens WHERE expires_at < ?"))
                        .bind(before_ms)
                        .execute(&self.pool),
                )
                .await
                .map(|done| done.rows_affected())
            }
        }
    };
}

for_each_dialect!(recovery_store);
