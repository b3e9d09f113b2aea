//! `CustomerStore` for the SQL stores: the same statements on every backend, written
//! once. A deletion also removes the customer's sessions (recording their revocations),
//! mail tokens and verified address, in one transaction.

use std::time::Duration;

use async_trait::async_trait;

use super::backend::{MySqlStore, PgStore, SqliteStore, decode_error, for_each_dialect};
use super::dialect::{as_written, numbered};
use crate::{
    domain::{
        Address, CheckResult, Credentials, CustomerId, Email, EmailKey, Name, NewCustomer,
        PersonalInfo, PhoneNumber, RandomId, Revocation, ShippingInfo,
    },
    storage::store::{
        StartRefused,
        customers::{CustomerStore, DeletedCustomer},
        error::{StoreError, StoreResult},
    },
};

macro_rules! customer_store {
    ($name:ident, $db:ty, begin: $begin:literal, lock: $lock:literal, id: $id:ty, sql: $q:ident, email_eq: $email_eq:literal) => {
        impl $name {
            /// Why a session of `customer` must not start (SPEC rule 15.1), read with the
            /// customer's row locked inside `tx`: gone, inactive, or (with `generation`)
            /// credentials changed since the login read them.
            pub(super) async fn start_refused_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                customer: $id,
                generation: Option<i64>,
            ) -> Result<Option<StartRefused>, sqlx::Error> {
                let row: Option<(Option<bool>, i64)> = sqlx::query_as($q!(concat!(
                    "SELECT active, credential_generation FROM customers WHERE id = ?",
                    $lock
                )))
                .bind(customer)
                .fetch_optional(&mut **tx)
                .await?;
                Ok(match row {
                    None => Some(StartRefused::CustomerGone),
                    Some((Some(false), _)) => Some(StartRefused::Inactive),
                    Some((_, current)) if generation.is_some_and(|g| g != current) => {
                        Some(StartRefused::CredentialsChanged)
                    }
                    Some(_) => None,
                })
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
                    || sqlx::query(
                        $q!("INSERT INTO customers (id, active, first_name, last_name, email, address, \
                         phone_number, bcrypted_password, updated_at, created_at) \
                         VALUES (?, TRUE, ?, ?, ?, ?, ?, ?, ?, ?)"),
                    )
                    .bind(id)
                    .bind(c.personal.first_name.as_str())
                    .bind(c.personal.last_name.as_str())
                    .bind(c.personal.email.as_str())
                    .bind(c.shipping.address.as_str())
                    .bind(c.shipping.phone_number.as_str())
                    .bind(c.password_hash.as_bytes())
                    .bind(now)
                    .bind(now)
                    .execute(&self.pool),
                )
                .await
                .map(drop)
            }

            async fn credentials(&self, email: &Email) -> StoreResult<Option<Credentials>> {
                let row: Option<($id, Option<bool>, Vec<u8>, i64)> = self
                    .run(
                        "credentials",
                        || sqlx::query_as($q!(concat!(
                            "SELECT id, active, bcrypted_password, credential_generation FROM customers WHERE ",
                            $email_eq
                        )))
                            .bind(email.as_str())
                            .fetch_optional(&self.pool),
                    )
                    .await?;
                let Some((id, active, hash, generation)) = row else { return Ok(None) };
                Ok(Some(Credentials {
                    id: CustomerId(u64::try_from(id).map_err(|_| decode_error("customer id"))?),
                    active: active.unwrap_or(true),
                    // binary(60) pads shorter values with NULs.
                    password_hash: String::from_utf8_lossy(&hash).trim_end_matches('\0').to_owned(),
                    generation,
                }))
            }

            async fn email_key(&self, email: &Email) -> StoreResult<EmailKey> {
                self.email_key_of(email).await
            }

            async fn check(&self, id: CustomerId) -> StoreResult<Option<CheckResult>> {
                let Some(id) = Self::bind_id(id) else { return Ok(None) };
                let row: Option<(Option<bool>,)> = self
                    .run(
                        "check",
                        || sqlx::query_as($q!("SELECT active FROM customers WHERE id = ?"))
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
                        || sqlx::query_as($q!("SELECT first_name, last_name, email FROM customers WHERE id = ?"))
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
                        || sqlx::query_as($q!("SELECT address, phone_number FROM customers WHERE id = ?"))
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
                revert_window: Duration,
            ) -> StoreResult<Option<PersonalInfo>> {
                let (first, last, email) = (
                    info.first_name.as_str().to_owned(),
                    info.last_name.as_str().to_owned(),
                    info.email.as_str().to_owned(),
                );
                let now = self.now_millis();
                let window = i64::try_from(revert_window.as_millis()).unwrap_or(i64::MAX);
                let run_since = now.saturating_sub(window);
                self.update_returning_previous(
                    "update_personal_info",
                    id,
                    $q!(concat!("SELECT first_name, last_name, email FROM customers WHERE id = ?", $lock)),
                    |row| sqlx::FromRow::from_row(&row).map(personal_from_row),
                    move |q| {
                        q.bind(first.clone())
                            .bind(last.clone())
                            .bind(email.clone())
                            .bind(run_since)
                            .bind(email.clone())
                            .bind(now)
                            .bind(email.clone())
                    },
                    // Rule 15.2, decided by the database's own comparison (`$email_eq`): a new
                    // address starts the reset hold, and keeps the run's original address
                    // while the last change is within the revert window (else the address
                    // it replaces becomes the original). `email` is assigned last: MySQL
                    // reads the columns assigned before it with their new values.
                    $q!(concat!(
                        "UPDATE customers SET first_name = ?, last_name = ?, \
                         email_before_change = CASE WHEN ", $email_eq, " THEN email_before_change \
                           WHEN email_before_change IS NOT NULL AND email_changed_at > ? THEN email_before_change \
                           ELSE email END, \
                         email_changed_at = CASE WHEN ", $email_eq, " THEN email_changed_at ELSE ? END, \
                         email = ?, updated_at = ? WHERE id = ?"
                    )),
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
                    $q!(concat!("SELECT address, phone_number FROM customers WHERE id = ?", $lock)),
                    |row| sqlx::FromRow::from_row(&row).map(shipping_from_row),
                    move |q| q.bind(address.clone()).bind(phone.clone()),
                    $q!("UPDATE customers SET address = ?, phone_number = ?, updated_at = ? WHERE id = ?"),
                )
                .await
            }

            async fn set_active(&self, id: CustomerId, active: bool) -> StoreResult<Option<bool>> {
                self.update_returning_previous(
                    "set_active",
                    id,
                    $q!(concat!("SELECT active FROM customers WHERE id = ?", $lock)),
                    |row| {
                        sqlx::FromRow::from_row(&row).map(|(a,): (Option<bool>,)| a.unwrap_or(true))
                    },
                    move |q| q.bind(active),
                    $q!("UPDATE customers SET active = ?, credential_generation = credential_generation + 1, \
                     updated_at = ? WHERE id = ?"),
                )
                .await
            }

            async fn update_password(&self, id: CustomerId, hash: &str) -> StoreResult<Option<Email>> {
                let hash = hash.to_owned();
                self.update_returning_previous(
                    "update_password",
                    id,
                    $q!(concat!("SELECT email FROM customers WHERE id = ?", $lock)),
                    |row| sqlx::FromRow::from_row(&row).map(|(email,): (String,)| Email::from_stored(email)),
                    move |q| q.bind(hash.clone().into_bytes()),
                    $q!("UPDATE customers SET bcrypted_password = ?, \
                     credential_generation = credential_generation + 1, updated_at = ? WHERE id = ?"),
                )
                .await
            }

            async fn bump_generation(&self, id: CustomerId) -> StoreResult<Option<Email>> {
                self.update_returning_previous(
                    "bump_generation",
                    id,
                    $q!(concat!("SELECT email FROM customers WHERE id = ?", $lock)),
                    |row| sqlx::FromRow::from_row(&row).map(|(email,): (String,)| Email::from_stored(email)),
                    |q| q,
                    $q!("UPDATE customers SET credential_generation = credential_generation + 1, updated_at = ? \
                     WHERE id = ?"),
                )
                .await
            }

            async fn upgrade_password(&self, id: CustomerId, verified: &str, hash: &str) -> StoreResult<bool> {
                let Some(bound) = Self::bind_id(id) else { return Ok(false) };
                let done = self
                    .run(
                        "upgrade_password",
                        || sqlx::query(
                            $q!("UPDATE customers SET bcrypted_password = ?, updated_at = ? \
                             WHERE id = ? AND bcrypted_password = ?"),
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
                self.run("delete_customer", || async move {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let row: Option<(String, String, String)> = sqlx::query_as($q!(concat!(
                        "SELECT first_name, last_name, email FROM customers WHERE id = ?",
                        $lock
                    )))
                    .bind(bound)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(row) = row else {
                        tx.rollback().await?;
                        return Ok(None);
                    };
                    // The access tokens of its live sessions stay refused until they expire.
                    let live: Vec<(Vec<u8>, i64)> = sqlx::query_as(
                        $q!("SELECT id, access_exp FROM sessions WHERE customer_id = ? \
                         AND revoked_at IS NULL AND access_exp >= ?"),
                    )
                    .bind(bound)
                    .bind(now_ms / 1000)
                    .fetch_all(&mut *tx)
                    .await?;
                    let mut revocations = Vec::with_capacity(live.len());
                    for (session, access_exp) in &live {
                        Self::record_revocation(&mut tx, bound, session, *access_exp, now_ms).await?;
                        if let Some(session) = RandomId::from_bytes(session) {
                            revocations.push(Revocation { session, access_until: *access_exp, revoked_at: now_ms });
                        }
                    }
                    sqlx::query($q!("DELETE FROM sessions WHERE customer_id = ?"))
                        .bind(bound)
                        .execute(&mut *tx)
                        .await?;
                    // Their tokens and verified address go with them (SPEC section 13).
                    sqlx::query($q!("DELETE FROM mail_tokens WHERE customer_id = ?"))
                        .bind(bound)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query($q!("DELETE FROM email_verifications WHERE customer_id = ?"))
                        .bind(bound)
                        .execute(&mut *tx)
                        .await?;
                    // And their second factor (SPEC section 16): no secret outlives its account.
                    for statement in [
                        $q!("DELETE FROM mfa_totp WHERE customer_id = ?"),
                        $q!("DELETE FROM mfa_recovery_codes WHERE customer_id = ?"),
                        $q!("DELETE FROM mfa_challenges WHERE customer_id = ?"),
                    ] {
                        sqlx::query(statement).bind(bound).execute(&mut *tx).await?;
                    }
                    sqlx::query($q!("DELETE FROM customers WHERE id = ?"))
                        .bind(bound)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(Some(DeletedCustomer { personal: personal_from_row(row), revocations }))
                })
                .await
            }

            async fn ping(&self) -> StoreResult<()> {
                self.run("ping", || sqlx::query($q!("SELECT 1")).execute(&self.pool)).await.map(drop)
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

for_each_dialect!(customer_store);
