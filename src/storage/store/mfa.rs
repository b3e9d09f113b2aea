//! The second factor's tables (SPEC section 16), behind one trait. Every check that a code
//! is used once is a single conditional statement, so that two replicas racing with one
//! code cannot both accept it.

use async_trait::async_trait;

use super::error::StoreResult;
use crate::domain::CustomerId;

/// A customer's TOTP secret, sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredTotp {
    pub sealed: Vec<u8>,
    /// Enrolled and confirmed: logins need a second step.
    pub confirmed: bool,
    /// The last step whose code was accepted.
    pub last_step: i64,
}

impl std::fmt::Debug for StoredTotp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTotp")
            .field("confirmed", &self.confirmed)
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

/// A password login waiting for its second step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaChallenge {
    /// SHA-256 of the `mfa_token`.
    pub token_hash: [u8; 32],
    pub customer: CustomerId,
    /// The client address it is bound to, as text (empty when unknown).
    pub client_ip: String,
    /// The key the login's failures count under (rule 15.3).
    pub email_key: String,
    /// The credential generation the password was checked against (rule 15.1).
    pub generation: i64,
    pub created_at: i64,
    pub expires_at: i64,
    /// Codes presented so far, this one included.
    pub attempts: u32,
}

#[async_trait]
pub trait MfaStore: Send + Sync + 'static {
    async fn totp(&self, customer: CustomerId) -> StoreResult<Option<StoredTotp>>;

    /// Keeps a new, pending secret in place of any pending one; false (nothing written)
    /// while a confirmed one exists.
    async fn begin_totp(
        &self,
        customer: CustomerId,
        sealed: &[u8],
        now_ms: i64,
    ) -> StoreResult<bool>;

    /// Confirms the pending secret `sealed` with the code of `step` and stores `codes` as
    /// the only recovery codes, in one transaction; false when that secret is no longer
    /// pending (confirmed or replaced meanwhile).
    async fn confirm_totp(
        &self,
        customer: CustomerId,
        sealed: &[u8],
        step: i64,
        codes: &[[u8; 32]],
        now_ms: i64,
    ) -> StoreResult<bool>;

    /// Compare-and-set: records `step` as used if it is later than the last used one of a
    /// confirmed secret; false otherwise (a replay, or no factor).
    async fn use_totp_step(&self, customer: CustomerId, step: i64) -> StoreResult<bool>;

    /// Removes the TOTP secret (pending or confirmed) and the recovery codes; whether a
    /// confirmed secret was removed.
    async fn remove_totp(&self, customer: CustomerId) -> StoreResult<bool>;

    /// Replaces the recovery codes; false (nothing written) without a confirmed secret.
    async fn replace_recovery_codes(
        &self,
        customer: CustomerId,
        codes: &[[u8; 32]],
        now_ms: i64,
    ) -> StoreResult<bool>;

    /// Deletes the code if it is one of the customer's; how many are left then, `None`
    /// when it was not (unknown or used).
    async fn use_recovery_code(
        &self,
        customer: CustomerId,
        digest: &[u8; 32],
    ) -> StoreResult<Option<u32>>;

    async fn recovery_codes_left(&self, customer: CustomerId) -> StoreResult<u32>;

    async fn add_challenge(&self, challenge: &MfaChallenge) -> StoreResult<()>;

    /// Counts one attempt on a live challenge that has fewer than `max_attempts`; the
    /// challenge after counting, `None` when it is unknown, used up or expired.
    async fn attempt_challenge(
        &self,
        token_hash: &[u8; 32],
        now_ms: i64,
        max_attempts: u32,
    ) -> StoreResult<Option<MfaChallenge>>;

    /// Deletes it; false when another request finished it first.
    async fn finish_challenge(&self, token_hash: &[u8; 32]) -> StoreResult<bool>;
}
