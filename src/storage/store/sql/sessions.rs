//! `SessionStore` for the SQL stores: the same statements on every backend, written
//! once. Revocations go into `session_revocations` in the same transaction as the session
//! rows they end, so that the feed never misses one that committed.

use async_trait::async_trait;

use super::backend::{MySqlStore, PgStore, SqliteStore, for_each_dialect};
use super::dialect::{as_written, numbered};
use crate::{
    domain::{CustomerId, RandomId, Revocation, RevokeReason, Session, SessionId, TokenId},
    storage::store::{
        error::{StoreError, StoreResult},
        sessions::{Rotation, SessionStore, StartRefused, SweepCounts, Which},
    },
};

/// Every column of `sessions`, in the order `SessionRow` reads them.
const SESSION_COLUMNS: &str = "id, customer_id, created_at, refreshed_at, expires_at, refresh_jti, \
     refresh_iat, refresh_exp, previous_jti, rotated_at, access_exp, tokens_exp, user_agent, \
     client_ip, revoked_at, revoke_reason";

/// Longest user agent kept (the column is `varchar(512)`).
const MAX_USER_AGENT_CHARS: usize = 512;

type SessionRow<Id> = (
    Vec<u8>,
    Id,
    i64,
    i64,
    i64,
    Vec<u8>,
    i64,
    i64,
    Option<Vec<u8>>,
    Option<i64>,
    i64,
    i64,
    String,
    String,
    Option<i64>,
    Option<String>,
);

fn session_from_row<Id: TryInto<u64>>(row: SessionRow<Id>) -> Result<Session, sqlx::Error> {
    let id = |bytes: &[u8]| {
        RandomId::from_bytes(bytes)
            .ok_or_else(|| sqlx::Error::Decode("malformed id in sessions".into()))
    };
    let (
        session,
        customer,
        created_at,
        refreshed_at,
        expires_at,
        refresh_jti,
        refresh_iat,
        refresh_exp,
        previous_jti,
        rotated_at,
        access_exp,
        tokens_exp,
        user_agent,
        client_ip,
        revoked_at,
        revoke_reason,
    ) = row;
    Ok(Session {
        id: id(&session)?,
        customer: CustomerId(
            customer
                .try_into()
                .map_err(|_| sqlx::Error::Decode("negative customer id".into()))?,
        ),
        created_at,
        refreshed_at,
        expires_at,
        refresh_jti: id(&refresh_jti)?,
        refresh_iat,
        refresh_exp,
        previous_jti: previous_jti.as_deref().map(id).transpose()?,
        rotated_at,
        access_exp,
        tokens_exp,
        user_agent,
        client_ip,
        revoked_at,
        revoke_reason: revoke_reason.as_deref().and_then(RevokeReason::parse),
    })
}

fn revocation(
    (session, access_until, revoked_at): (Vec<u8>, i64, i64),
) -> Result<Revocation, sqlx::Error> {
    Ok(Revocation {
        session: RandomId::from_bytes(&session)
            .ok_or_else(|| sqlx::Error::Decode("malformed id in session_revocations".into()))?,
        access_until,
        revoked_at,
    })
}

fn truncated(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

macro_rules! session_store {
    ($name:ident, $db:ty, begin: $begin:literal, lock: $lock:literal, id: $id:ty, sql: $q:ident, email_eq: $email_eq:literal) => {
        impl $name {
            /// Revokes `(session, access_exp)` pairs inside `tx` and records them in the feed.
            async fn revoke_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                customer: $id,
                sessions: &[(Vec<u8>, i64)],
                reason: RevokeReason,
                now_ms: i64,
            ) -> Result<Vec<Revocation>, sqlx::Error> {
                let mut revoked = Vec::with_capacity(sessions.len());
                for (session, access_exp) in sessions {
                    sqlx::query(
                        $q!("UPDATE sessions SET revoked_at = ?, revoke_reason = ? \
                         WHERE id = ? AND revoked_at IS NULL"),
                    )
                    .bind(now_ms)
                    .bind(reason.label())
                    .bind(session.as_slice())
                    .execute(&mut **tx)
                    .await?;
                    Self::record_revocation(tx, customer, session, *access_exp, now_ms).await?;
                    revoked.push(revocation((session.clone(), *access_exp, now_ms))?);
                }
                Ok(revoked)
            }

            pub(super) async fn record_revocation(
                tx: &mut sqlx::Transaction<'_, $db>,
                customer: $id,
                session: &[u8],
                access_exp: i64,
                now_ms: i64,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(
                    $q!("INSERT INTO session_revocations (session_id, customer_id, revoked_at, access_until) \
                     VALUES (?, ?, ?, ?)"),
                )
                .bind(session)
                .bind(customer)
                .bind(now_ms)
                .bind(access_exp)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// The revocations whose `column` is at least `from`: the poll's feed
            /// (`revoked_at`) or those whose access tokens may still be alive (`access_until`).
            async fn revocations_where(
                &self,
                operation: &'static str,
                column: &'static str,
                from: i64,
            ) -> StoreResult<Vec<Revocation>> {
                let sql = Self::dialect(format!(
                    "SELECT session_id, access_until, revoked_at FROM session_revocations \
                     WHERE {column} >= ?"
                ));
                let rows: Vec<(Vec<u8>, i64, i64)> = self
                    .run(operation, || sqlx::query_as(&sql).bind(from).fetch_all(&self.pool))
                    .await?;
                rows.into_iter()
                    .map(revocation)
                    .collect::<Result<_, _>>()
                    .map_err(|e| StoreError::Other(e.into()))
            }

            /// The live sessions of `customer` that `which` names, locked.
            async fn live_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                customer: $id,
                which: Which,
                now_ms: i64,
            ) -> Result<Vec<(Vec<u8>, i64)>, sqlx::Error> {
                let (filter, id) = match which {
                    Which::All => ("", None),
                    Which::Only(id) => (" AND id = ?", Some(id)),
                    Which::AllExcept(id) => (" AND id <> ?", Some(id)),
                };
                let sql = Self::dialect(format!(
                    "SELECT id, access_exp FROM sessions WHERE customer_id = ? AND revoked_at IS NULL \
                     AND expires_at > ?{filter} ORDER BY refreshed_at DESC{}",
                    $lock
                ));
                let mut query = sqlx::query_as(&sql).bind(customer).bind(now_ms);
                if let Some(id) = id {
                    query = query.bind(id.as_bytes().to_vec());
                }
                query.fetch_all(&mut **tx).await
            }
        }

        #[async_trait]
        impl SessionStore for $name {
            async fn start(
                &self,
                session: &Session,
                max_live: u32,
                generation: Option<i64>,
            ) -> StoreResult<Result<Vec<Revocation>, StartRefused>> {
                let Some(customer) = Self::bind_id(session.customer) else {
                    return Err(StoreError::Other("customer id out of range".into()));
                };
                self.run("session_start", || async move {
                    let mut tx = self.pool.begin_with($begin).await?;
                    // The customer's row, locked: a credential change commits before this
                    // read (and is seen) or after this session exists (and revokes it).
                    let refused = Self::start_refused_in(&mut tx, customer, generation).await?;
                    if let Some(refused) = refused {
                        tx.rollback().await?;
                        return Ok(Err(refused));
                    }
                    sqlx::query(
                        $q!("INSERT INTO sessions (id, customer_id, created_at, refreshed_at, expires_at, \
                         refresh_jti, refresh_iat, refresh_exp, access_exp, tokens_exp, user_agent, client_ip) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                    )
                    .bind(session.id.as_bytes().as_slice())
                    .bind(customer)
                    .bind(session.created_at)
                    .bind(session.refreshed_at)
                    .bind(session.expires_at)
                    .bind(session.refresh_jti.as_bytes().as_slice())
                    .bind(session.refresh_iat)
                    .bind(session.refresh_exp)
                    .bind(session.access_exp)
                    .bind(session.tokens_exp)
                    .bind(truncated(&session.user_agent, MAX_USER_AGENT_CHARS))
                    .bind(session.client_ip.as_str())
                    .execute(&mut *tx)
                    .await?;
                    let live = Self::live_in(&mut tx, customer, Which::All, session.created_at).await?;
                    let beyond: Vec<(Vec<u8>, i64)> =
                        live.into_iter().skip(usize::try_from(max_live).unwrap_or(usize::MAX)).collect();
                    let evicted =
                        Self::revoke_in(&mut tx, customer, &beyond, RevokeReason::Evicted, session.created_at)
                            .await?;
                    if !evicted.is_empty() {
                        // Revoked rows are history only (the feed has their revocations):
                        // keep them from piling up for a customer who logs in without end.
                        let (rows,): (i64,) =
                            sqlx::query_as($q!("SELECT COUNT(*) FROM sessions WHERE customer_id = ?"))
                                .bind(customer)
                                .fetch_one(&mut *tx)
                                .await?;
                        if rows > 2 * i64::from(max_live) {
                            sqlx::query(
                                $q!("DELETE FROM sessions WHERE customer_id = ? AND revoked_at IS NOT NULL"),
                            )
                            .bind(customer)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                    tx.commit().await?;
                    Ok(Ok(evicted))
                })
                .await
            }

            async fn get(&self, id: SessionId) -> StoreResult<Option<Session>> {
                let sql = Self::dialect(format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?"));
                let row: Option<SessionRow<$id>> = self
                    .run(
                        "session_get",
                        || sqlx::query_as(&sql).bind(id.as_bytes().as_slice()).fetch_optional(&self.pool),
                    )
                    .await?;
                row.map(session_from_row)
                    .transpose()
                    .map_err(|e| StoreError::Other(e.into()))
            }

            async fn rotate(
                &self,
                id: SessionId,
                customer: CustomerId,
                presented: TokenId,
                rotation: &Rotation,
                now_ms: i64,
            ) -> StoreResult<bool> {
                let Some(customer) = Self::bind_id(customer) else {
                    return Ok(false);
                };
                let done = self
                    .run(
                        "session_rotate",
                        || sqlx::query(
                            $q!("UPDATE sessions SET previous_jti = refresh_jti, rotated_at = ?, \
                             refresh_jti = ?, refresh_iat = ?, refresh_exp = ?, refreshed_at = ?, \
                             access_exp = ?, tokens_exp = ? \
                             WHERE id = ? AND customer_id = ? AND refresh_jti = ? AND revoked_at IS NULL \
                             AND expires_at > ?"),
                        )
                        .bind(rotation.refreshed_at)
                        .bind(rotation.new_jti.as_bytes().as_slice())
                        .bind(rotation.iat)
                        .bind(rotation.refresh_exp)
                        .bind(rotation.refreshed_at)
                        .bind(rotation.access_exp)
                        .bind(rotation.tokens_exp)
                        .bind(id.as_bytes().as_slice())
                        .bind(customer)
                        .bind(presented.as_bytes().as_slice())
                        .bind(now_ms)
                        .execute(&self.pool),
                    )
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn touch(
                &self,
                id: SessionId,
                refreshed_at: i64,
                access_exp: i64,
                tokens_exp: i64,
            ) -> StoreResult<bool> {
                let done = self
                    .run(
                        "session_touch",
                        || sqlx::query(
                            $q!("UPDATE sessions SET refreshed_at = ?, \
                             access_exp = CASE WHEN access_exp > ? THEN access_exp ELSE ? END, \
                             tokens_exp = CASE WHEN tokens_exp > ? THEN tokens_exp ELSE ? END \
                             WHERE id = ? AND revoked_at IS NULL AND expires_at > ?"),
                        )
                        .bind(refreshed_at)
                        .bind(access_exp)
                        .bind(access_exp)
                        .bind(tokens_exp)
                        .bind(tokens_exp)
                        .bind(id.as_bytes().as_slice())
                        .bind(refreshed_at)
                        .execute(&self.pool),
                    )
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn revoke(
                &self,
                customer: CustomerId,
                which: Which,
                reason: RevokeReason,
                now_ms: i64,
            ) -> StoreResult<Vec<Revocation>> {
                let Some(customer) = Self::bind_id(customer) else {
                    return Ok(Vec::new());
                };
                self.run("session_revoke", || async move {
                    let mut tx = self.pool.begin_with($begin).await?;
                    let live = Self::live_in(&mut tx, customer, which, now_ms).await?;
                    let revoked = Self::revoke_in(&mut tx, customer, &live, reason, now_ms).await?;
                    tx.commit().await?;
                    Ok(revoked)
                })
                .await
            }

            async fn list_live(&self, customer: CustomerId, now_ms: i64) -> StoreResult<Vec<Session>> {
                let Some(customer) = Self::bind_id(customer) else {
                    return Ok(Vec::new());
                };
                let sql = Self::dialect(format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE customer_id = ? AND revoked_at IS NULL \
                     AND expires_at > ? AND tokens_exp >= ? ORDER BY created_at DESC, id"
                ));
                let rows: Vec<SessionRow<$id>> = self
                    .run(
                        "session_list",
                        || sqlx::query_as(&sql)
                            .bind(customer)
                            .bind(now_ms)
                            .bind(now_ms / 1000)
                            .fetch_all(&self.pool),
                    )
                    .await?;
                rows.into_iter()
                    .map(session_from_row)
                    .collect::<Result<_, _>>()
                    .map_err(|e| StoreError::Other(e.into()))
            }

            async fn revocations_since(&self, since_ms: i64) -> StoreResult<Vec<Revocation>> {
                self.revocations_where("revocations_since", "revoked_at", since_ms).await
            }

            async fn live_revocations(&self, now_secs: i64) -> StoreResult<Vec<Revocation>> {
                self.revocations_where("live_revocations", "access_until", now_secs).await
            }

            async fn sweep(&self, now_ms: i64) -> StoreResult<SweepCounts> {
                let now_secs = now_ms / 1000;
                self.run("session_sweep", || async move {
                    let expired = sqlx::query(
                        $q!("DELETE FROM sessions WHERE tokens_exp < ? AND revoked_at IS NULL"),
                    )
                    .bind(now_secs)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                    let revoked = sqlx::query(
                        $q!("DELETE FROM sessions WHERE tokens_exp < ? AND revoked_at IS NOT NULL"),
                    )
                    .bind(now_secs)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                    let revocations =
                        sqlx::query($q!("DELETE FROM session_revocations WHERE access_until < ?"))
                            .bind(now_secs)
                            .execute(&self.pool)
                            .await?
                            .rows_affected();
                    // Second steps never finished (SPEC section 16) go with them.
                    sqlx::query($q!("DELETE FROM mfa_challenges WHERE expires_at < ?"))
                        .bind(now_ms)
                        .execute(&self.pool)
                        .await?;
                    Ok(SweepCounts {
                        expired,
                        sessions: expired + revoked,
                        revocations,
                    })
                })
                .await
            }

        }
    };
}

for_each_dialect!(session_store);
