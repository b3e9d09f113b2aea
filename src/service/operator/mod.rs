//! The operator API (SPEC section 14) and the `saga-account customer …` commands: both
//! call `AdminService`, which logs one audit line per call (the key's name, the action,
//! the customer id; never a key or a token) and counts it.

pub mod keys;

use crate::{
    domain::{Account, CustomerId, Email, Error, RevokeReason, Session},
    metrics::Metrics,
    service::auth::AuthService,
    service::recovery::RecoveryService,
};

pub use keys::{ApiKey, ApiKeys};

/// Who acts: a named API key, or the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor<'a> {
    Key(&'a str),
    Cli,
}

impl Actor<'_> {
    pub fn name(&self) -> &str {
        match self {
            Actor::Key(name) => name,
            Actor::Cli => "cli",
        }
    }
}

/// The actions, as logged and counted.
pub const ACTIONS: [&str; 9] = [
    "find_customer",
    "get_customer",
    "activate",
    "deactivate",
    "delete_customer",
    "list_sessions",
    "revoke_sessions",
    "password_reset",
    "mfa_reset",
];

#[derive(Clone)]
pub struct AdminService {
    auth: AuthService,
    recovery: RecoveryService,
    metrics: Metrics,
}

impl AdminService {
    /// `key_names`: the configured keys, whose counters start at 0.
    pub fn new<'a>(
        auth: AuthService,
        recovery: RecoveryService,
        metrics: Metrics,
        key_names: impl Iterator<Item = &'a str>,
    ) -> Self {
        for key in key_names.chain(["cli"]) {
            for action in ACTIONS {
                metrics.mail.admin_calls.with_label_values(&[action, key]);
            }
        }
        Self {
            auth,
            recovery,
            metrics,
        }
    }

    fn audit<T>(
        &self,
        actor: Actor<'_>,
        action: &'static str,
        customer: Option<CustomerId>,
        result: &Result<T, Error>,
    ) {
        self.metrics
            .mail
            .admin_calls
            .with_label_values(&[action, actor.name()])
            .inc();
        let outcome = result.as_ref().map_or_else(Error::label, |_| "ok");
        tracing::info!(
            target: "audit",
            key = actor.name(),
            action,
            customer_id = customer.map(|c| c.0),
            outcome,
            "operator call"
        );
    }

    pub async fn find_customer(&self, actor: Actor<'_>, email: &Email) -> Result<Account, Error> {
        let result = self.recovery.account_by_email(email).await;
        self.audit(
            actor,
            "find_customer",
            result.as_ref().ok().map(|a| a.id),
            &result,
        );
        result
    }

    pub async fn customer(&self, actor: Actor<'_>, id: CustomerId) -> Result<Account, Error> {
        let result = self.recovery.account(id).await;
        self.audit(actor, "get_customer", Some(id), &result);
        result
    }

    /// Returns the previous state; deactivation revokes every session.
    pub async fn set_active(
        &self,
        actor: Actor<'_>,
        id: CustomerId,
        active: bool,
    ) -> Result<bool, Error> {
        let result = self.auth.set_active(id, active).await;
        let action = if active { "activate" } else { "deactivate" };
        self.audit(actor, action, Some(id), &result);
        result
    }

    /// As account deletion (SPEC section 9), without the password.
    pub async fn delete_customer(&self, actor: Actor<'_>, id: CustomerId) -> Result<(), Error> {
        let result = self.auth.delete_customer(id).await;
        self.audit(actor, "delete_customer", Some(id), &result);
        result
    }

    pub async fn sessions(&self, actor: Actor<'_>, id: CustomerId) -> Result<Vec<Session>, Error> {
        let result = async {
            self.recovery.account(id).await?;
            self.auth.sessions_of(id).await
        }
        .await;
        self.audit(actor, "list_sessions", Some(id), &result);
        result
    }

    /// Revokes every session; returns how many were live.
    pub async fn revoke_sessions(&self, actor: Actor<'_>, id: CustomerId) -> Result<usize, Error> {
        let result = async {
            self.recovery.account(id).await?;
            self.auth.end_every_session(id, RevokeReason::Admin).await
        }
        .await;
        self.audit(actor, "revoke_sessions", Some(id), &result);
        result
    }

    /// Removes the customer's TOTP and recovery codes (SPEC section 16; passkeys stay); the
    /// customer is told by mail. Whether a factor was active.
    pub async fn mfa_reset(&self, actor: Actor<'_>, id: CustomerId) -> Result<bool, Error> {
        let result = self.auth.reset_second_factor(id).await;
        self.audit(actor, "mfa_reset", Some(id), &result);
        result
    }

    /// Queues the reset mail; nobody but the customer ever sees the token.
    pub async fn password_reset(&self, actor: Actor<'_>, id: CustomerId) -> Result<(), Error> {
        let result = self.recovery.send_reset_to(id).await;
        self.audit(actor, "password_reset", Some(id), &result);
        result
    }
}
