//! Password reset and email verification (SPEC section 13): the flows behind the routes,
//! on the outbox, the token store and the auth service's hashing pool and sessions.
//!
//! A forgot-password request does the same work for a known and an unknown email (the
//! limits, one outbox insert); finding the customer happens when the mail is sent, off the
//! request path, so the answer's timing tells nothing.

use std::{sync::Arc, time::Duration};

use crate::{
    domain::clock::Clock,
    domain::{
        Account, ClientInfo, CustomerId, Email, Error, MailKind, Password, RevokeReason,
        TokenPurpose,
    },
    metrics::Metrics,
    service::auth::AuthService,
    service::mail::{Mailer, token},
    service::throttle::{Decision, Throttle, WindowKey},
    storage::cache::CachedStore,
    storage::store::{CustomerStore, NewMail, RecoveryStore, ResetOutcome, RevertOutcome, Which},
};

/// The window of the mail limits.
const MAIL_WINDOW: Duration = Duration::from_secs(3600);

/// Limits on reset and verification mails; 0 = off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailLimits {
    pub per_email_per_hour: u32,
    pub per_ip_per_hour: u32,
}

pub struct RecoveryDeps {
    pub auth: AuthService,
    pub customers: Arc<CachedStore>,
    pub store: Arc<dyn RecoveryStore>,
    pub mailer: Mailer,
    pub throttle: Throttle,
    pub limits: MailLimits,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
}

#[derive(Clone)]
pub struct RecoveryService(Arc<RecoveryDeps>);

fn outcome<T>(result: &Result<T, Error>) -> &'static str {
    match result {
        Ok(_) => "success",
        Err(e) => e.label(),
    }
}

impl RecoveryService {
    pub fn new(deps: RecoveryDeps) -> Self {
        for limit in WindowKey::MAIL_LABELS {
            deps.metrics.mail.limited.with_label_values(&[limit]);
        }
        for label in [
            "success",
            "invalid_or_expired_token",
            "password_too_weak",
            "invalid_parameter",
        ] {
            deps.metrics.mail.resets.with_label_values(&[label]);
        }
        for label in ["success", "invalid_or_expired_token"] {
            deps.metrics.mail.verifications.with_label_values(&[label]);
        }
        for label in ["success", "invalid_or_expired_token", "duplicate_entry"] {
            deps.metrics.mail.reverts.with_label_values(&[label]);
        }
        Self(Arc::new(deps))
    }

    fn now_ms(&self) -> i64 {
        i64::try_from(self.0.clock.now_millis()).unwrap_or(i64::MAX)
    }

    /// Whether one more reset or verification mail may go to `email` from `client`; a
    /// refusal is silent (the caller still gets 202).
    async fn mail_allowed(&self, email: &Email, client: &ClientInfo) -> bool {
        let limits = self.0.limits;
        let by_address = client.ip.map(WindowKey::MailAddress);
        // Rule 15.3: one limit for every spelling the database takes for this address.
        let by_email = WindowKey::MailEmail(self.0.auth.email_key(email).await);
        let checks = by_address
            .map(|key| (key, limits.per_ip_per_hour))
            .into_iter()
            .chain([(by_email, limits.per_email_per_hour)]);
        for (key, limit) in checks {
            if let Decision::Limited { .. } = self.0.throttle.hit(&key, limit, MAIL_WINDOW).await {
                self.0
                    .metrics
                    .mail
                    .limited
                    .with_label_values(&[key.label()])
                    .inc();
                return false;
            }
        }
        true
    }

    /// `POST /auth/password/forgot`: the same work whoever owns `email`.
    pub async fn forgot_password(&self, email: Email, client: &ClientInfo) -> Result<(), Error> {
        if self.mail_allowed(&email, client).await {
            self.0
                .mailer
                .queue(NewMail {
                    kind: MailKind::PasswordReset,
                    customer: None,
                    email,
                })
                .await?;
        }
        Ok(())
    }

    /// The operator's reset: the customer gets the same mail; no limit applies.
    pub async fn send_reset_to(&self, customer: CustomerId) -> Result<(), Error> {
        let account = self.account(customer).await?;
        self.0
            .mailer
            .queue(NewMail {
                kind: MailKind::PasswordReset,
                customer: Some(customer),
                email: account.personal.email,
            })
            .await
    }

    /// `POST /auth/password/reset`.
    pub async fn reset_password(&self, token_text: &str, new: Password) -> Result<(), Error> {
        let result = self.try_reset(token_text, new).await;
        self.0
            .metrics
            .mail
            .resets
            .with_label_values(&[outcome(&result)])
            .inc();
        if let Err(e) = &result
            && !matches!(e, Error::Internal(_) | Error::Unavailable(_))
        {
            tracing::info!(outcome = e.label(), "password reset refused");
        }
        result
    }

    async fn try_reset(&self, token_text: &str, new: Password) -> Result<(), Error> {
        let hash = token::parse(token_text).ok_or(Error::InvalidOrExpiredToken)?;
        // Checked before any hashing, so that a bad token costs nothing; checked again in
        // the transaction that uses it up.
        let now = self.now_ms();
        let record = self
            .0
            .store
            .find_token(&hash, TokenPurpose::Reset)
            .await?
            .filter(|t| t.used_at.is_none() && t.expires_at > now)
            .ok_or(Error::InvalidOrExpiredToken)?;
        let customer = record.customer;
        let personal = self
            .0
            .customers
            .personal_info(customer)
            .await?
            .ok_or(Error::InvalidOrExpiredToken)?;
        self.0.auth.check_strength(&new, &personal).await?;
        let password_hash = self.0.auth.hasher().hash(new).await?;
        let email = match self
            .0
            .store
            .reset_password(&hash, customer, &password_hash, self.now_ms())
            .await?
        {
            ResetOutcome::Done(email) => email,
            ResetOutcome::Refused => return Err(Error::InvalidOrExpiredToken),
        };
        // Every replica verifies against the new hash from now on.
        self.0.customers.invalidate_credentials(&email).await;
        self.0
            .auth
            .sessions()
            .revoke(customer, Which::All, RevokeReason::PasswordReset)
            .await?;
        self.0.auth.clear_lockouts(customer, &email).await;
        tracing::info!(customer_id = %customer, "password reset");
        self.0
            .mailer
            .queue(NewMail {
                kind: MailKind::PasswordChanged,
                customer: Some(customer),
                email,
            })
            .await
    }

    /// `POST /info/email/verification`: a mail to the customer's current email.
    pub async fn request_verification(
        &self,
        customer: CustomerId,
        client: &ClientInfo,
    ) -> Result<(), Error> {
        let personal = self
            .0
            .customers
            .personal_info(customer)
            .await?
            .ok_or(Error::CustomerNotFound)?;
        if self.mail_allowed(&personal.email, client).await {
            self.0
                .mailer
                .queue(NewMail {
                    kind: MailKind::EmailVerification,
                    customer: Some(customer),
                    email: personal.email,
                })
                .await?;
        }
        Ok(())
    }

    /// `POST /auth/email/verify`.
    pub async fn verify_email(&self, token_text: &str) -> Result<(), Error> {
        let result = match token::parse(token_text) {
            None => Err(Error::InvalidOrExpiredToken),
            Some(hash) => match self.0.store.verify_email(&hash, self.now_ms()).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(Error::InvalidOrExpiredToken),
                Err(e) => Err(e.into()),
            },
        };
        self.0
            .metrics
            .mail
            .verifications
            .with_label_values(&[outcome(&result)])
            .inc();
        result
    }

    /// `POST /auth/email/revert` (rule 15.2): the link of an "email changed" notice puts
    /// the original address back, verified, and ends every session of the customer.
    pub async fn revert_email(&self, token_text: &str) -> Result<(), Error> {
        let result = self.try_revert(token_text).await;
        self.0
            .metrics
            .mail
            .reverts
            .with_label_values(&[outcome(&result)])
            .inc();
        if let Err(e) = &result
            && !matches!(e, Error::Internal(_) | Error::Unavailable(_))
        {
            tracing::info!(outcome = e.label(), "email revert refused");
        }
        result
    }

    async fn try_revert(&self, token_text: &str) -> Result<(), Error> {
        let hash = token::parse(token_text).ok_or(Error::InvalidOrExpiredToken)?;
        // Read first for the cache keys of the address it restores; checked again in the
        // transaction that uses it up.
        let now = self.now_ms();
        let record = self
            .0
            .store
            .find_token(&hash, TokenPurpose::Revert)
            .await?
            .filter(|t| t.used_at.is_none() && t.expires_at > now)
            .ok_or(Error::InvalidOrExpiredToken)?;
        // Through the cache: every replica drops the personal information and the
        // credentials of both addresses.
        let outcome = self
            .0
            .customers
            .email_write(
                record.customer,
                &record.email,
                self.0.store.revert_email(&hash, self.now_ms()),
            )
            .await?;
        let (customer, restored) = match outcome {
            RevertOutcome::Done {
                customer, restored, ..
            } => (customer, restored),
            RevertOutcome::Refused => return Err(Error::InvalidOrExpiredToken),
            RevertOutcome::Taken => return Err(Error::DuplicateEntry),
        };
        // The generation was bumped in the transaction; every session ends on every
        // replica, as after a reset.
        self.0
            .auth
            .sessions()
            .revoke(customer, Which::All, RevokeReason::EmailReverted)
            .await?;
        self.0.auth.clear_login_failures(&restored).await;
        tracing::info!(customer_id = %customer, "email change reverted");
        Ok(())
    }

    /// The customer with whether their email is verified (`GET /info/account`).
    pub async fn account(&self, customer: CustomerId) -> Result<Account, Error> {
        self.0
            .store
            .account(customer)
            .await?
            .ok_or(Error::CustomerNotFound)
    }

    pub async fn account_by_email(&self, email: &Email) -> Result<Account, Error> {
        // The cache answers "which id has this email" (its negative entries included).
        let id = self
            .0
            .customers
            .credentials(email)
            .await?
            .ok_or(Error::CustomerNotFound)?
            .id;
        self.account(id).await
    }
}
