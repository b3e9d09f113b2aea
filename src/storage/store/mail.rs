//! The mail outbox and the reset/verification tokens (SPEC section 13), behind two traits.

use async_trait::async_trait;

use super::error::StoreResult;
use crate::domain::{Account, CustomerId, Email, MailKind, TokenPurpose};

/// A mail to queue: what to send to whom. Never a token: that is made when it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMail {
    pub kind: MailKind,
    /// `None` for a reset requested by email: the sender resolves the address.
    pub customer: Option<CustomerId>,
    pub email: Email,
}

/// A queued mail this replica has claimed. `attempts` counts this attempt and is the
/// row's version: finishing or rescheduling it only works while nobody re-claimed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedMail {
    pub id: i64,
    pub kind: MailKind,
    pub customer: Option<CustomerId>,
    pub email: Email,
    /// Unix milliseconds.
    pub created_at: i64,
    pub attempts: u32,
}

/// How full the outbox is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub depth: u64,
    /// Unix milliseconds of the oldest row, if any.
    pub oldest_created_at: Option<i64>,
}

#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Queues a mail, due at once.
    async fn enqueue(&self, mail: &NewMail, now_ms: i64) -> StoreResult<()>;

    /// Claims up to `limit` due rows, each by a compare-and-set on its version, and makes
    /// them due again only at `lease_until_ms` (should this replica die while sending).
    /// Of replicas claiming at once, exactly one gets each row.
    async fn claim_due(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedMail>>;

    /// Removes a claimed row (sent, or given up); false when another replica re-claimed it.
    async fn finish(&self, id: i64, attempts: u32) -> StoreResult<bool>;

    /// Makes a claimed row due again at `next_ms`, noting why it failed.
    async fn reschedule(
        &self,
        id: i64,
        attempts: u32,
        next_ms: i64,
        error: &str,
    ) -> StoreResult<()>;

    async fn stats(&self) -> StoreResult<OutboxStats>;
}

/// A token as issued: its hash, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub hash: [u8; 32],
    pub purpose: TokenPurpose,
    pub customer: CustomerId,
    /// The address the mail carrying it goes to.
    pub email: Email,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A stored token, looked up by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub customer: CustomerId,
    pub email: Email,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// What a reset changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetOutcome {
    /// The token was used up, the password replaced; the customer's email.
    Done(Email),
    /// Unknown, used, expired, of another customer, or the email changed since.
    Refused,
}

/// The last email change of a customer (rule 15.2), as recorded with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailChange {
    /// Unix milliseconds of the last change by `PUT /info/person`.
    pub changed_at: i64,
    /// The address before the first change of the current run (changes less than the
    /// revert window apart): what every revert link of the run puts back.
    pub original: Email,
}

/// What a revert changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevertOutcome {
    /// The token was used up and `restored` is the customer's verified email again, in
    /// place of `replaced`; the credential generation was bumped.
    Done {
        customer: CustomerId,
        replaced: Email,
        restored: Email,
    },
    /// Unknown, used, expired, of a run of changes that is over, or the customer is gone.
    Refused,
    /// Another customer has the address now; nothing changed, the token stays usable.
    Taken,
}

#[async_trait]
pub trait RecoveryStore: Send + Sync + 'static {
    /// Stores a token's hash; with `void_older`, the customer's unused tokens of the same
    /// purpose are used up in the same transaction (a new reset voids the older ones).
    async fn issue_token(&self, token: &IssuedToken, void_older: bool) -> StoreResult<()>;

    async fn find_token(
        &self,
        hash: &[u8; 32],
        purpose: TokenPurpose,
    ) -> StoreResult<Option<TokenRecord>>;

    /// In one transaction: uses up the reset token (only if unused, unexpired, of
    /// `customer`, whose email is still the token's and who is active), voids the
    /// customer's other reset tokens, stores `password_hash` and marks the email verified.
    /// Of two resets racing with one token, exactly one gets `Done`.
    async fn reset_password(
        &self,
        hash: &[u8; 32],
        customer: CustomerId,
        password_hash: &str,
        now_ms: i64,
    ) -> StoreResult<ResetOutcome>;

    /// In one transaction: uses up a verification token whose email is still the
    /// customer's and marks that email verified. A token already used answers true while
    /// that same email is still the customer's and verified. False otherwise.
    async fn verify_email(&self, hash: &[u8; 32], now_ms: i64) -> StoreResult<bool>;

    /// The customer with whether their current email is verified.
    async fn account(&self, id: CustomerId) -> StoreResult<Option<Account>>;

    async fn account_by_email(&self, email: &Email) -> StoreResult<Option<Account>>;

    /// The customer's last email change, if one is recorded and not reverted.
    async fn email_change(&self, id: CustomerId) -> StoreResult<Option<EmailChange>>;

    /// In one transaction (rule 15.2): uses up the revert token (only if unused and
    /// unexpired, and its address is still the original of the customer's run of
    /// changes), voids the customer's other revert and reset tokens, puts the address
    /// back, marks it verified, ends the run and the reset hold, and bumps the credential
    /// generation. Of two reverts racing with one token, exactly one gets `Done`.
    async fn revert_email(&self, hash: &[u8; 32], now_ms: i64) -> StoreResult<RevertOutcome>;

    /// Forgets the verified address (the email changed).
    async fn forget_verification(&self, id: CustomerId) -> StoreResult<()>;

    /// Deletes tokens that expired before `before_ms`; returns how many.
    async fn sweep_tokens(&self, before_ms: i64) -> StoreResult<u64>;
}
