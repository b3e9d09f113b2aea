//! `OutboxStore` for both SQL stores, written once.
//!
//! The outbox claim is a compare-and-set on the row's `attempts` (its version), so two
//! replicas that read the same due rows never both send one.

use async_trait::async_trait;

use super::backend::{MySqlStore, PgStore, SqliteStore, decode_error, for_each_dialect};
use super::dialect::{as_written, numbered};
use crate::{
    domain::{CustomerId, Email, MailKind},
    storage::store::{
        error::StoreResult,
        mail::{ClaimedMail, NewMail, OutboxStats, OutboxStore},
    },
};

/// Longest failure reason kept (the column is `varchar(512)`).
const MAX_ERROR_CHARS: usize = 500;

macro_rules! outbox_store {
    ($name:ident, $db:ty, begin: $begin:literal, lock: $lock:literal, id: $id:ty, sql: $q:ident, email_eq: $email_eq:literal) => {
        #[async_trait]
        impl OutboxStore for $name {
            async fn enqueue(&self, mail: &NewMail, now_ms: i64) -> StoreResult<()> {
                let customer = mail.customer.and_then(Self::bind_id);
                self.run(
                    "outbox_enqueue",
                    || sqlx::query(
                        $q!("INSERT INTO mail_outbox (kind, customer_id, email, created_at, attempts, next_attempt_at) \
                         VALUES (?, ?, ?, ?, 0, ?)"),
                    )
                    .bind(mail.kind.label())
                    .bind(customer)
                    .bind(mail.email.as_str())
                    .bind(now_ms)
                    .bind(now_ms)
                    .execute(&self.pool),
                )
                .await
                .map(drop)
            }

            async fn claim_due(
                &self,
                now_ms: i64,
                lease_until_ms: i64,
                limit: u32,
            ) -> StoreResult<Vec<ClaimedMail>> {
                let due: Vec<(i64, String, Option<$id>, String, i64, i64)> = self
                    .run(
                        "outbox_due",
                        || sqlx::query_as(
                            $q!("SELECT id, kind, customer_id, email, created_at, attempts FROM mail_outbox \
                             WHERE next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?"),
                        )
                        .bind(now_ms)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool),
                    )
                    .await?;
                let mut claimed = Vec::with_capacity(due.len());
                for (id, kind, customer, email, created_at, attempts) in due {
                    // The compare-and-set: only the replica that still sees this version
                    // and due time moves the row on.
                    let done = self
                        .run(
                            "outbox_claim",
                            || sqlx::query(
                                $q!("UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = ? \
                                 WHERE id = ? AND attempts = ? AND next_attempt_at <= ?"),
                            )
                            .bind(lease_until_ms)
                            .bind(id)
                            .bind(attempts)
                            .bind(now_ms)
                            .execute(&self.pool),
                        )
                        .await?;
                    if done.rows_affected() != 1 {
                        continue;
                    }
                    let Some(kind) = MailKind::parse(&kind) else {
                        // Written by a newer version: leave it to that version.
                        tracing::warn!(id, kind, "outbox row of an unknown kind skipped");
                        continue;
                    };
                    let customer = match customer {
                        Some(c) => Some(CustomerId(
                            c.try_into().map_err(|_| decode_error("customer id"))?,
                        )),
                        None => None,
                    };
                    claimed.push(ClaimedMail {
                        id,
                        kind,
                        customer,
                        email: Email::from_stored(email),
                        created_at,
                        attempts: u32::try_from(attempts + 1).unwrap_or(u32::MAX),
                    });
                }
                Ok(claimed)
            }

            async fn finish(&self, id: i64, attempts: u32) -> StoreResult<bool> {
                let done = self
                    .run(
                        "outbox_finish",
                        || sqlx::query($q!("DELETE FROM mail_outbox WHERE id = ? AND attempts = ?"))
                            .bind(id)
                            .bind(i64::from(attempts))
                            .execute(&self.pool),
                    )
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn reschedule(
                &self,
                id: i64,
                attempts: u32,
                next_ms: i64,
                error: &str,
            ) -> StoreResult<()> {
                let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
                self.run(
                    "outbox_reschedule",
                    || sqlx::query(
                        $q!("UPDATE mail_outbox SET next_attempt_at = ?, last_error = ? \
                         WHERE id = ? AND attempts = ?"),
                    )
                    .bind(next_ms)
                    .bind(error.as_str())
                    .bind(id)
                    .bind(i64::from(attempts))
                    .execute(&self.pool),
                )
                .await
                .map(drop)
            }

            async fn stats(&self) -> StoreResult<OutboxStats> {
                let (depth, oldest): (i64, Option<i64>) = self
                    .run(
                        "outbox_stats",
                        || sqlx::query_as($q!("SELECT COUNT(*), MIN(created_at) FROM mail_outbox"))
                            .fetch_one(&self.pool),
                    )
                    .await?;
                Ok(OutboxStats {
                    depth: u64::try_from(depth).unwrap_or(0),
                    oldest_created_at: oldest,
                })
            }
        }
    };
}

for_each_dialect!(outbox_store);
