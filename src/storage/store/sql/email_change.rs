//! The email change records of rule 15.2 for the SQL stores, written once: reading the
//! last change (for the reset hold and the revert links) and the revert itself.
//!
//! The revert is one transaction, as the reset is: the token row and then the customer's
//! row are locked (`FOR UPDATE` on MySQL; `BEGIN IMMEDIATE` takes SQLite's write lock)
//! before the token is checked and used up, so that of two reverts exactly one wins.

use super::backend::{MySqlStore, PgStore, SqliteStore, for_each_dialect};
use super::dialect::{as_written, numbered};
use super::recovery::same_email;
use crate::{
    domain::{CustomerId, Email},
    storage::store::{
        error::StoreResult,
        mail::{EmailChange, RevertOutcome},
    },
};

macro_rules! email_change_store {
    ($name:ident, $db:ty, begin: $begin:literal, lock: $lock:literal, id: $id:ty, sql: $q:ident, email_eq: $email_eq:literal) => {
        impl $name {
            pub(super) async fn email_change_of(
                &self,
                id: CustomerId,
            ) -> StoreResult<Option<EmailChange>> {
                let Some(id) = Self::bind_id(id) else { return Ok(None) };
                let row: Option<(Option<i64>, Option<String>)> = self
                    .run("email_change", || {
                        sqlx::query_as(
                            $q!("SELECT email_changed_at, email_before_change FROM customers WHERE id = ?"),
                        )
                        .bind(id)
                        .fetch_optional(&self.pool)
                    })
                    .await?;
                Ok(match row {
                    Some((Some(changed_at), Some(original))) => Some(EmailChange {
                        changed_at,
                        original: Email::from_stored(original),
                    }),
                    _ => None,
                })
            }

            pub(super) async fn revert_email_with(
                &self,
                hash: &[u8; 32],
                now_ms: i64,
            ) -> StoreResult<RevertOutcome> {
                self.run("email_revert", || async move {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let token: Option<($id, String, i64, Option<i64>)> = sqlx::query_as($q!(concat!(
                        "SELECT customer_id, email, expires_at, used_at FROM mail_tokens \
                         WHERE token_hash = ? AND purpose = 'revert'",
                        $lock
                    )))
                    .bind(hash.as_slice())
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some((customer, restored, _, _)) =
                        token.filter(|(_, _, expires_at, used_at)| used_at.is_none() && *expires_at > now_ms)
                    else {
                        tx.rollback().await?;
                        return Ok(RevertOutcome::Refused);
                    };
                    let customer_id = u64::try_from(customer)
                        .map_err(|_| sqlx::Error::Decode("malformed customer id".into()))?;
                    let current: Option<(String, Option<String>)> = sqlx::query_as($q!(concat!(
                        "SELECT email, email_before_change FROM customers WHERE id = ?",
                        $lock
                    )))
                    .bind(customer)
                    .fetch_optional(&mut *tx)
                    .await?;
                    // The token must belong to the run of changes still recorded: a run that
                    // was reverted (or ended and a new one began) has no say any more.
                    let Some((replaced, _)) = current.filter(|(_, original)| {
                        original.as_deref().is_some_and(|o| same_email(o, &restored))
                    }) else {
                        tx.rollback().await?;
                        return Ok(RevertOutcome::Refused);
                    };
                    let taken: Option<($id,)> =
                        sqlx::query_as($q!(concat!("SELECT id FROM customers WHERE ", $email_eq, " AND id <> ?")))
                            .bind(restored.as_str())
                            .bind(customer)
                            .fetch_optional(&mut *tx)
                            .await?;
                    if taken.is_some() {
                        tx.rollback().await?;
                        return Ok(RevertOutcome::Taken);
                    }
                    // This token and every other link of the run are used up; so are the
                    // reset links sent to the addresses the change brought in.
                    Self::void_tokens_in(&mut tx, customer, "revert", now_ms).await?;
                    Self::void_tokens_in(&mut tx, customer, "reset", now_ms).await?;
                    sqlx::query(
                        $q!("UPDATE customers SET email = ?, email_before_change = NULL, \
                         email_changed_at = NULL, credential_generation = credential_generation + 1, \
                         updated_at = ? WHERE id = ?"),
                    )
                    .bind(restored.as_str())
                    .bind(now_ms)
                    .bind(customer)
                    .execute(&mut *tx)
                    .await?;
                    // The link reached this address: it is the customer's.
                    Self::mark_verified_in(&mut tx, customer, &restored, now_ms).await?;
                    tx.commit().await?;
                    Ok(RevertOutcome::Done {
                        customer: CustomerId(customer_id),
                        replaced: Email::from_stored(replaced),
                        restored: Email::from_stored(restored),
                    })
                })
                .await
            }
        }
    };
}

for_each_dialect!(email_change_store);
