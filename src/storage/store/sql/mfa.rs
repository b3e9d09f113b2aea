//! `MfaStore` for the SQL stores (SPEC section 16). Each "once only" is one conditional
//! statement: a step later than the last one used, a recovery code deleted, an attempt
//! counted below the limit, a challenge deleted.

use async_trait::async_trait;

use super::backend::{MySqlStore, PgStore, SqliteStore, for_each_dialect};
use super::dialect::{as_written, numbered};
use crate::{
    domain::CustomerId,
    storage::store::{
        error::{StoreError, StoreResult},
        mfa::{MfaChallenge, MfaStore, StoredTotp},
    },
};

/// `token_hash`, `customer_id`, `client_ip`, `email_key`, `generation`, `created_at`,
/// `expires_at`, `attempts`.
type ChallengeRow<Id> = (Vec<u8>, Id, String, String, i64, i64, i64, i32);

fn challenge_from_row<Id: TryInto<u64>>(row: ChallengeRow<Id>) -> StoreResult<MfaChallenge> {
    let (hash, id, client_ip, email_key, generation, created_at, expires_at, attempts) = row;
    Ok(MfaChallenge {
        token_hash: hash
            .try_into()
            .map_err(|_| super::backend::decode_error("challenge hash"))?,
        customer: CustomerId(
            id.try_into()
                .map_err(|_| super::backend::decode_error("customer id"))?,
        ),
        client_ip,
        email_key,
        generation,
        created_at,
        expires_at,
        attempts: u32::try_from(attempts).unwrap_or(0),
    })
}

macro_rules! mfa_store {
    ($name:ident, $db:ty, begin: $begin:literal, lock: $lock:literal, id: $id:ty, sql: $q:ident, email_eq: $email_eq:literal) => {
        impl $name {
            async fn insert_codes(
                tx: &mut sqlx::Transaction<'_, $db>,
                customer: $id,
                codes: &[[u8; 32]],
                now_ms: i64,
            ) -> Result<(), sqlx::Error> {
                sqlx::query($q!("DELETE FROM mfa_recovery_codes WHERE customer_id = ?"))
                    .bind(customer)
                    .execute(&mut **tx)
                    .await?;
                for code in codes {
                    sqlx::query($q!("INSERT INTO mfa_recovery_codes (customer_id, code_hash, created_at) VALUES (?, ?, ?)"))
                        .bind(customer)
                        .bind(code.as_slice())
                        .bind(now_ms)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
            }
        }

        #[async_trait]
        impl MfaStore for $name {
            async fn totp(&self, customer: CustomerId) -> StoreResult<Option<StoredTotp>> {
                let Some(id) = Self::bind_id(customer) else { return Ok(None) };
                let row: Option<(Vec<u8>, Option<i64>, i64)> = self
                    .run("mfa_totp", || {
                        sqlx::query_as($q!("SELECT secret, confirmed_at, last_step FROM mfa_totp WHERE customer_id = ?"))
                            .bind(id)
                            .fetch_optional(&self.pool)
                    })
                    .await?;
                Ok(row.map(|(sealed, confirmed_at, last_step)| StoredTotp {
                    sealed,
                    confirmed: confirmed_at.is_some(),
                    last_step,
                }))
            }

            async fn begin_totp(&self, customer: CustomerId, sealed: &[u8], now_ms: i64) -> StoreResult<bool> {
                let Some(id) = Self::bind_id(customer) else { return Ok(false) };
                let begun = self
                    .run("mfa_begin_totp", || async move {
                        let mut tx = self.pool.begin_with($begin).await?;
                        let existing: Option<(Option<i64>,)> = sqlx::query_as(
                            $q!(concat!("SELECT confirmed_at FROM mfa_totp WHERE customer_id = ?", $lock)),
                        )
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                        if matches!(existing, Some((Some(_),))) {
                            tx.rollback().await?;
                            return Ok(false);
                        }
                        sqlx::query($q!("DELETE FROM mfa_totp WHERE customer_id = ?"))
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query($q!("INSERT INTO mfa_totp (customer_id, secret, created_at, confirmed_at, last_step) VALUES (?, ?, ?, NULL, 0)"))
                            .bind(id)
                            .bind(sealed)
                            .bind(now_ms)
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await?;
                        Ok(true)
                    })
                    .await;
                match begun {
                    // Two enrolments racing where no row was there to lock: the other one
                    // wrote first; whichever secret is pending now is the one to confirm.
                    Err(StoreError::Duplicate | StoreError::IdTaken) => Ok(!self
                        .totp(customer)
                        .await?
                        .is_some_and(|t| t.confirmed)),
                    other => other,
                }
            }

            async fn confirm_totp(
                &self,
                customer: CustomerId,
                sealed: &[u8],
                step: i64,
                codes: &[[u8; 32]],
                now_ms: i64,
            ) -> StoreResult<bool> {
                let Some(id) = Self::bind_id(customer) else { return Ok(false) };
                self.run("mfa_confirm_totp", || async move {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let confirmed = sqlx::query($q!(
                        "UPDATE mfa_totp SET confirmed_at = ?, last_step = ? \
                         WHERE customer_id = ? AND secret = ? AND confirmed_at IS NULL"
                    ))
                    .bind(now_ms)
                    .bind(step)
                    .bind(id)
                    .bind(sealed)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if confirmed != 1 {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                    Self::insert_codes(&mut tx, id, codes, now_ms).await?;
                    tx.commit().await?;
                    Ok(true)
                })
                .await
            }

            async fn use_totp_step(&self, customer: CustomerId, step: i64) -> StoreResult<bool> {
                let Some(id) = Self::bind_id(customer) else { return Ok(false) };
                let used = self
                    .run("mfa_use_totp_step", || {
                        sqlx::query($q!(
                            "UPDATE mfa_totp SET last_step = ? \
                             WHERE customer_id = ? AND confirmed_at IS NOT NULL AND last_step < ?"
                        ))
                        .bind(step)
                        .bind(id)
                        .bind(step)
                        .execute(&self.pool)
                    })
                    .await?;
                Ok(used.rows_affected() == 1)
            }

            async fn remove_totp(&self, customer: CustomerId) -> StoreResult<bool> {
                let Some(id) = Self::bind_id(customer) else { return Ok(false) };
                self.run("mfa_remove_totp", || async move {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let removed = sqlx::query($q!("DELETE FROM mfa_totp WHERE customer_id = ? AND confirmed_at IS NOT NULL"))
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    for statement in [
                        $q!("DELETE FROM mfa_totp WHERE customer_id = ?"),
                        $q!("DELETE FROM mfa_recovery_codes WHERE customer_id = ?"),
                        $q!("DELETE FROM mfa_challenges WHERE customer_id = ?"),
                    ] {
                        sqlx::query(statement).bind(id).execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    Ok(removed == 1)
                })
                .await
            }

            async fn replace_recovery_codes(
                &self,
                customer: CustomerId,
                codes: &[[u8; 32]],
                now_ms: i64,
            ) -> StoreResult<bool> {
                let Some(id) = Self::bind_id(customer) else { return Ok(false) };
                self.run("mfa_replace_recovery_codes", || async move {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let active: Option<(i64,)> = sqlx::query_as($q!(concat!(
                        "SELECT last_step FROM mfa_totp WHERE customer_id = ? AND confirmed_at IS NOT NULL",
                        $lock
                    )))
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if active.is_none() {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                    Self::insert_codes(&mut tx, id, codes, now_ms).await?;
                    tx.commit().await?;
                    Ok(true)
                })
                .await
            }

            async fn use_recovery_code(&self, customer: CustomerId, digest: &[u8; 32]) -> StoreResult<Option<u32>> {
                let Some(id) = Self::bind_id(customer) else { return Ok(None) };
                let used = self
                    .run("mfa_use_recovery_code", || {
                        sqlx::query($q!("DELETE FROM mfa_recovery_codes WHERE customer_id = ? AND code_hash = ?"))
                            .bind(id)
                            .bind(digest.as_slice())
                            .execute(&self.pool)
                    })
                    .await?;
                if used.rows_affected() != 1 {
                    return Ok(None);
                }
                self.recovery_codes_left(customer).await.map(Some)
            }

            async fn recovery_codes_left(&self, customer: CustomerId) -> StoreResult<u32> {
                let Some(id) = Self::bind_id(customer) else { return Ok(0) };
                let (left,): (i64,) = self
                    .run("mfa_recovery_codes_left", || {
                        sqlx::query_as($q!("SELECT COUNT(*) FROM mfa_recovery_codes WHERE customer_id = ?"))
                            .bind(id)
                            .fetch_one(&self.pool)
                    })
                    .await?;
                Ok(u32::try_from(left).unwrap_or(0))
            }

            async fn add_challenge(&self, c: &MfaChallenge) -> StoreResult<()> {
                let Some(id) = Self::bind_id(c.customer) else {
                    return Err(super::backend::decode_error("customer id"));
                };
                self.run("mfa_add_challenge", || {
                    sqlx::query($q!(
                        "INSERT INTO mfa_challenges (token_hash, customer_id, client_ip, email_key, \
                         generation, created_at, expires_at, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, 0)"
                    ))
                    .bind(c.token_hash.as_slice())
                    .bind(id)
                    .bind(c.client_ip.as_str())
                    .bind(c.email_key.as_str())
                    .bind(c.generation)
                    .bind(c.created_at)
                    .bind(c.expires_at)
                    .execute(&self.pool)
                })
                .await
                .map(drop)
            }

            async fn attempt_challenge(
                &self,
                token_hash: &[u8; 32],
                now_ms: i64,
                max_attempts: u32,
            ) -> StoreResult<Option<MfaChallenge>> {
                let max = i32::try_from(max_attempts).unwrap_or(i32::MAX);
                let row: Option<ChallengeRow<$id>> = self
                    .run("mfa_attempt_challenge", || async move {
                        let mut tx = self.pool.begin_with($begin).await?;
                        let counted = sqlx::query($q!(
                            "UPDATE mfa_challenges SET attempts = attempts + 1 \
                             WHERE token_hash = ? AND expires_at > ? AND attempts < ?"
                        ))
                        .bind(token_hash.as_slice())
                        .bind(now_ms)
                        .bind(max)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        if counted != 1 {
                            tx.rollback().await?;
                            return Ok(None);
                        }
                        let row = sqlx::query_as($q!(
                            "SELECT token_hash, customer_id, client_ip, email_key, generation, \
                             created_at, expires_at, attempts FROM mfa_challenges WHERE token_hash = ?"
                        ))
                        .bind(token_hash.as_slice())
                        .fetch_optional(&mut *tx)
                        .await?;
                        tx.commit().await?;
                        Ok(row)
                    })
                    .await?;
                row.map(challenge_from_row).transpose()
            }

            async fn finish_challenge(&self, token_hash: &[u8; 32]) -> StoreResult<bool> {
                let done = self
                    .run("mfa_finish_challenge", || {
                        sqlx::query($q!("DELETE FROM mfa_challenges WHERE token_hash = ?"))
                            .bind(token_hash.as_slice())
                            .execute(&self.pool)
                    })
                    .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

for_each_dialect!(mfa_store);
