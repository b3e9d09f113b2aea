//! The session table and the revocation feed (SPEC section 9), behind one trait.

use async_trait::async_trait;

use super::error::StoreResult;
use crate::domain::{CustomerId, Revocation, RevokeReason, Session, SessionId, TokenId};

/// Which of a customer's live sessions a revocation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    All,
    Only(SessionId),
    AllExcept(SessionId),
}

/// A refresh that replaces the session's refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub new_jti: TokenId,
    pub iat: i64,
    pub refresh_exp: i64,
    pub refreshed_at: i64,
    pub access_exp: i64,
    pub tokens_exp: i64,
}

/// What a sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepCounts {
    /// Sessions that ended by running out of time (never revoked).
    pub expired: u64,
    /// Session rows deleted in all.
    pub sessions: u64,
    /// Revocations whose access tokens have all expired.
    pub revocations: u64,
}

/// Why a session was not started: the customer's row, read in the transaction that would
/// have started it, says no (SPEC rule 15.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartRefused {
    CustomerGone,
    Inactive,
    /// The credential generation is not the one the login read: they changed meanwhile.
    CredentialsChanged,
}

#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// In one transaction: requires the customer to exist, be active and (with
    /// `generation`) still have that credential generation; inserts `session`; ends the
    /// customer's least recently refreshed live sessions beyond `max_live` (reason
    /// `evicted`) and returns their revocations.
    async fn start(
        &self,
        session: &Session,
        max_live: u32,
        generation: Option<i64>,
    ) -> StoreResult<Result<Vec<Revocation>, StartRefused>>;

    async fn get(&self, id: SessionId) -> StoreResult<Option<Session>>;

    /// Compare-and-set: replaces the current refresh token `presented` by the rotation's.
    /// False when `presented` is no longer current or the session (of `customer`) is not
    /// live: of two refreshes racing with one token, exactly one rotates.
    async fn rotate(
        &self,
        id: SessionId,
        customer: CustomerId,
        presented: TokenId,
        rotation: &Rotation,
        now_ms: i64,
    ) -> StoreResult<bool>;

    /// A refresh that keeps the refresh token (rotation off, or the grace window): records
    /// the new access token's expiry. False when the session is not live.
    async fn touch(
        &self,
        id: SessionId,
        refreshed_at: i64,
        access_exp: i64,
        tokens_exp: i64,
    ) -> StoreResult<bool>;

    /// Revokes the customer's live sessions that `which` names and records their
    /// revocations; returns them (empty when none matched).
    async fn revoke(
        &self,
        customer: CustomerId,
        which: Which,
        reason: RevokeReason,
        now_ms: i64,
    ) -> StoreResult<Vec<Revocation>>;

    /// Live sessions, newest first.
    async fn list_live(&self, customer: CustomerId, now_ms: i64) -> StoreResult<Vec<Session>>;

    /// Revocations recorded at or after `since_ms` (the feed every replica polls).
    async fn revocations_since(&self, since_ms: i64) -> StoreResult<Vec<Revocation>>;

    /// Revocations whose access tokens may still be presented at `now_secs` (loaded at
    /// start).
    async fn live_revocations(&self, now_secs: i64) -> StoreResult<Vec<Revocation>>;

    /// Deletes sessions no token of which can be presented any more, and revocations whose
    /// access tokens have all expired.
    async fn sweep(&self, now_ms: i64) -> StoreResult<SweepCounts>;
}
