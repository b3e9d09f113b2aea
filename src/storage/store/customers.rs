//! The customer table's trait, implemented by the SQL stores and wrapped by the cache.

use std::time::Duration;

use async_trait::async_trait;

use super::error::StoreResult;
use crate::domain::{
    CheckResult, Credentials, CustomerId, Email, EmailKey, NewCustomer, PersonalInfo, Revocation,
    ShippingInfo,
};

/// The customer table. Lookups return `None` for an unknown customer; updates return the
/// previous value (so that a cache knows what became stale) or `None` for an unknown customer.
#[async_trait]
pub trait CustomerStore: Send + Sync + 'static {
    async fn insert(&self, customer: &NewCustomer) -> StoreResult<()>;
    async fn credentials(&self, email: &Email) -> StoreResult<Option<Credentials>>;
    /// The key of `email` as this database matches addresses (rule 15.3): spellings that
    /// find one row have one key. By default ASCII letters without case (SQLite's `NOCASE`).
    async fn email_key(&self, email: &Email) -> StoreResult<EmailKey> {
        Ok(EmailKey::ascii_folded(email))
    }
    async fn check(&self, id: CustomerId) -> StoreResult<Option<CheckResult>>;
    async fn personal_info(&self, id: CustomerId) -> StoreResult<Option<PersonalInfo>>;
    async fn shipping_info(&self, id: CustomerId) -> StoreResult<Option<ShippingInfo>>;
    /// Replaces the name and email. An email that the database takes for another address
    /// records the change (rule 15.2): when, and the address a revert puts back: the one
    /// this change replaces, or, while the last change is less than `revert_window` ago,
    /// the original of that run of changes.
    async fn update_personal_info(
        &self,
        id: CustomerId,
        info: &PersonalInfo,
        revert_window: Duration,
    ) -> StoreResult<Option<PersonalInfo>>;
    async fn update_shipping_info(
        &self,
        id: CustomerId,
        info: &ShippingInfo,
    ) -> StoreResult<Option<ShippingInfo>>;
    /// Sets a customer's `active` flag and bumps the credential generation; returns the
    /// previous state, `None` if unknown.
    async fn set_active(&self, id: CustomerId, active: bool) -> StoreResult<Option<bool>>;
    /// Replaces the password hash and bumps the credential generation; returns the
    /// customer's email, `None` if unknown.
    async fn update_password(&self, id: CustomerId, hash: &str) -> StoreResult<Option<Email>>;
    /// The transparent upgrade: replaces the hash only while it is still `verified`
    /// (compare-and-set), so that it never restores an older password. Whether it wrote.
    async fn upgrade_password(
        &self,
        id: CustomerId,
        verified: &str,
        hash: &str,
    ) -> StoreResult<bool>;
    /// Bumps the credential generation (SPEC rule 15.1) without changing the credentials:
    /// a login that read them before does not start a session (logout everywhere). Returns
    /// the customer's email, `None` if unknown.
    async fn bump_generation(&self, id: CustomerId) -> StoreResult<Option<Email>>;
    /// Removes the customer and their sessions in one transaction; the live sessions'
    /// revocations are recorded (their access tokens are refused until they expire).
    /// `None` if unknown.
    async fn delete(&self, id: CustomerId, now_ms: i64) -> StoreResult<Option<DeletedCustomer>>;
    /// One round trip to the database, for readiness.
    async fn ping(&self) -> StoreResult<()>;
    /// Closes the pool, waiting for connections in use to be returned.
    async fn close(&self);
}

/// What an account deletion removed.
#[derive(Debug, Clone)]
pub struct DeletedCustomer {
    pub personal: PersonalInfo,
    pub revocations: Vec<Revocation>,
}
