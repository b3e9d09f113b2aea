//! The sender task: claims due outbox rows, makes each mail (and its token), hands it
//! over, and deletes, reschedules or gives up the row. One per replica; rows are claimed
//! by compare-and-set, so replicas never send one mail twice.

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use lettre::{
    Message,
    message::{Mailbox, MultiPart},
};
use tokio::{sync::Notify, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use super::{
    outbox::Mailer,
    settings::{EmailChangeSettings, MailSettings},
    smtp::Transport,
    templates, token,
};
use crate::{
    domain::clock::Clock,
    domain::{Account, Email, ErrorChain, MailKind, TokenPurpose, masked_email},
    metrics::Metrics,
    storage::store::{ClaimedMail, IssuedToken, MfaStore, OutboxStore, RecoveryStore, StoreError},
};

/// Rows claimed at once.
const BATCH: u32 = 64;
/// How often expired tokens are deleted.
const TOKEN_SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Why a mail could not be made or sent this time.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("template: {0}")]
    Template(#[from] askama::Error),
    #[error("message: {0}")]
    Message(#[from] lettre::error::Error),
    #[error(transparent)]
    Send(#[from] super::smtp::SendError),
}

pub struct Sender {
    outbox: Arc<dyn OutboxStore>,
    recovery: Arc<dyn RecoveryStore>,
    /// How many recovery codes are left, for the notice of one used.
    mfa: Arc<dyn MfaStore>,
    transport: Transport,
    settings: Arc<MailSettings>,
    email_change: EmailChangeSettings,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    wake: Arc<Notify>,
}

impl Sender {
    pub fn new(
        mailer: &Mailer,
        recovery: Arc<dyn RecoveryStore>,
        mfa: Arc<dyn MfaStore>,
        transport: Transport,
        settings: Arc<MailSettings>,
        email_change: EmailChangeSettings,
    ) -> Self {
        Self {
            outbox: mailer.outbox.clone(),
            recovery,
            mfa,
            transport,
            settings,
            email_change,
            clock: mailer.clock.clone(),
            metrics: mailer.metrics.clone(),
            wake: mailer.wake_handle(),
        }
    }

    fn now_ms(&self) -> i64 {
        i64::try_from(self.clock.now_millis()).unwrap_or(i64::MAX)
    }

    /// Runs until `stop`; a batch being sent is finished first.
    pub fn spawn(self, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut last_sweep: Option<tokio::time::Instant> = None;
            loop {
                self.drain(&stop).await;
                self.report().await;
                if last_sweep.is_none_or(|t| t.elapsed() >= TOKEN_SWEEP_EVERY) {
                    last_sweep = Some(tokio::time::Instant::now());
                    // Kept a day past expiry, so that "expired" is told apart from "unknown"
                    // in logs while it matters.
                    let before = self.now_ms().saturating_sub(86_400_000);
                    if let Err(error) = self.recovery.sweep_tokens(before).await {
                        tracing::warn!(error = %ErrorChain(&error), "sweeping expired mail tokens");
                    }
                }
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(self.settings.poll) => {}
                }
            }
        })
    }

    /// Sends every due mail.
    async fn drain(&self, stop: &CancellationToken) {
        while !stop.is_cancelled() {
            let now = self.now_ms();
            let lease = i64::try_from(self.settings.lease().as_millis()).unwrap_or(i64::MAX);
            let batch = match self
                .outbox
                .claim_due(now, now.saturating_add(lease), BATCH)
                .await
            {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(error = %ErrorChain(&error), "reading the mail outbox");
                    return;
                }
            };
            if batch.is_empty() {
                return;
            }
            futures_util::stream::iter(batch)
                .for_each_concurrent(self.settings.concurrency, |mail| self.deliver(mail))
                .await;
        }
    }

    async fn report(&self) {
        if let Ok(stats) = self.outbox.stats().await {
            let m = &self.metrics.mail;
            m.outbox_depth
                .set(i64::try_from(stats.depth).unwrap_or(i64::MAX));
            let age = stats
                .oldest_created_at
                .map_or(0, |t| (self.now_ms() - t).max(0) / 1000);
            m.outbox_oldest_age_seconds.set(age);
        }
    }

    async fn deliver(&self, mail: ClaimedMail) {
        let kind = mail.kind.label();
        let attempt = async {
            let Some(message) = self.compose(&mail).await? else {
                return Ok(false);
            };
            let name = format!("{}-{}-{kind}", mail.created_at, mail.id);
            self.transport.send(message, &name).await?;
            Ok::<_, AttemptError>(true)
        };
        match attempt.await {
            Ok(sent) => {
                if let Err(error) = self.outbox.finish(mail.id, mail.attempts).await {
                    // The mail went out; the lease runs out and it may go again. Rare, and
                    // better than losing it.
                    tracing::warn!(id = mail.id, kind, error = %ErrorChain(&error), "sent mail not removed from the outbox");
                }
                let m = &self.metrics.mail;
                if sent {
                    m.sent.with_label_values(&[kind]).inc();
                    let delay = (self.now_ms() - mail.created_at).max(0);
                    #[allow(clippy::cast_precision_loss, reason = "milliseconds as seconds")]
                    m.delivery_delay
                        .with_label_values(&[kind])
                        .observe(delay as f64 / 1000.0);
                    tracing::info!(id = mail.id, kind, customer_id = ?mail.customer.map(|c| c.0), attempts = mail.attempts, "mail sent");
                } else {
                    m.skipped.with_label_values(&[kind]).inc();
                    tracing::debug!(id = mail.id, kind, "mail skipped: nobody to send it to");
                }
            }
            Err(error) => self.failed(&mail, &error).await,
        }
    }

    async fn failed(&self, mail: &ClaimedMail, error: &AttemptError) {
        let kind = mail.kind.label();
        let m = &self.metrics.mail;
        if mail.attempts >= self.settings.max_attempts {
            m.failed.with_label_values(&[kind]).inc();
            tracing::error!(id = mail.id, kind, customer_id = ?mail.customer.map(|c| c.0), attempts = mail.attempts, error = %ErrorChain(error), "mail given up");
            if let Err(e) = self.outbox.finish(mail.id, mail.attempts).await {
                tracing::warn!(id = mail.id, error = %ErrorChain(&e), "given-up mail not removed from the outbox");
            }
            return;
        }
        m.retried.with_label_values(&[kind]).inc();
        let delay = self.settings.backoff(mail.attempts);
        tracing::warn!(id = mail.id, kind, attempts = mail.attempts, retry_in = ?delay, error = %ErrorChain(error), "mail not sent; will retry");
        let next = self
            .now_ms()
            .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
        if let Err(e) = self
            .outbox
            .reschedule(mail.id, mail.attempts, next, &error.to_string())
            .await
        {
            // The lease makes it due again anyway.
            tracing::warn!(id = mail.id, error = %ErrorChain(&e), "mail retry not scheduled");
        }
    }

    /// The message for a row, or `None` when nobody should get it.
    async fn compose(&self, mail: &ClaimedMail) -> Result<Option<Message>, AttemptError> {
        let s = &self.settings;
        let (to, rendered) = match mail.kind {
            MailKind::PasswordReset => {
                let Some(account) = self
                    .recovery
                    .account_by_email(&mail.email)
                    .await?
                    .filter(|a| a.active)
                else {
                    return Ok(None);
                };
                // Rule 15.2: asked for by email (no customer on the row: not the
                // operator's), shortly after the email changed, the mail is dropped as for
                // an unknown address.
                if mail.customer.is_none() && self.reset_held(&account).await? {
                    tracing::info!(id = mail.id, customer_id = %account.id, "reset mail held: the email changed recently");
                    return Ok(None);
                }
                let token = self
                    .issue(&account, TokenPurpose::Reset, s.reset_ttl)
                    .await?;
                let link = format!("{}/reset-password?token={token}", s.public_base_url);
                let name = account.personal.first_name.as_str().to_owned();
                let minutes = s.reset_ttl.as_secs().div_ceil(60);
                let rendered = templates::reset(&name, &link, &token, minutes)?;
                (account.personal.email, rendered)
            }
            MailKind::EmailVerification => {
                let Some(account) = self.account_at(mail).await? else {
                    return Ok(None);
                };
                let token = self
                    .issue(&account, TokenPurpose::Verify, s.verify_ttl)
                    .await?;
                let link = format!("{}/verify-email?token={token}", s.public_base_url);
                let name = account.personal.first_name.as_str().to_owned();
                let hours = s.verify_ttl.as_secs().div_ceil(3600);
                let rendered = templates::verify(&name, &link, &token, hours)?;
                (account.personal.email, rendered)
            }
            MailKind::PasswordChanged => {
                let Some(account) = self.account_at(mail).await? else {
                    return Ok(None);
                };
                let name = account.personal.first_name.as_str().to_owned();
                (account.personal.email, templates::password_changed(&name)?)
            }
            MailKind::SecondFactorAdded
            | MailKind::SecondFactorRemoved
            | MailKind::RecoveryCodeUsed => {
                let Some(account) = self.account_at(mail).await? else {
                    return Ok(None);
                };
                let rendered = self.security_notice(mail.kind, &account).await?;
                (account.personal.email, rendered)
            }
            MailKind::EmailChanged => {
                let Some(rendered) = self.email_changed(mail).await? else {
                    return Ok(None);
                };
                // To the address the change replaced: the row's.
                (mail.email.clone(), rendered)
            }
        };
        let Ok(to) = to.as_str().parse::<lettre::Address>() else {
            tracing::warn!(id = mail.id, "stored email is not an address SMTP accepts");
            return Ok(None);
        };
        let message = Message::builder()
            .from(s.from.clone())
            .to(Mailbox::new(None, to))
            .subject(rendered.subject)
            .message_id(None)
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))?;
        Ok(Some(message))
    }

    /// The notices of the second factor (SPEC section 16).
    async fn security_notice(
        &self,
        kind: MailKind,
        account: &Account,
    ) -> Result<templates::Rendered, AttemptError> {
        let name = account.personal.first_name.as_str();
        let (subject, headline, detail) = match kind {
            MailKind::SecondFactorAdded => (
                "A second factor was added to your account",
                "An authenticator app was added to your account: signing in now needs a code from it.".to_owned(),
                "Keep your recovery codes somewhere safe; each signs you in once if the app is lost.".to_owned(),
            ),
            MailKind::RecoveryCodeUsed => {
                let left = self.mfa.recovery_codes_left(account.id).await?;
                (
                    "A recovery code was used",
                    "One of your recovery codes was just used to sign in or to confirm a change.".to_owned(),
                    format!("{left} recovery codes are left. Make new ones on your account page when few are left."),
                )
            }
            _ => (
                "The second factor was removed from your account",
                "The authenticator app was removed from your account: signing in needs only your password again.".to_owned(),
                "Your recovery codes no longer work.".to_owned(),
            ),
        };
        Ok(templates::security_notice(
            name, subject, &headline, &detail,
        )?)
    }

    /// Whether a reset asked for by email must send nothing yet: the customer's email
    /// changed less than `EMAIL_CHANGE_RESET_HOLD_SECONDS` ago (and was not reverted).
    async fn reset_held(&self, account: &Account) -> Result<bool, StoreError> {
        let hold = i64::try_from(self.email_change.reset_hold.as_millis()).unwrap_or(i64::MAX);
        if hold == 0 {
            return Ok(false);
        }
        let change = self.recovery.email_change(account.id).await?;
        Ok(change.is_some_and(|c| self.now_ms() < c.changed_at.saturating_add(hold)))
    }

    /// The "email changed" notice of rule 15.2: the customer's address now, masked, and a
    /// link that puts back the original address of the run of changes. `None` when the
    /// customer is gone or the change was reverted before the notice went out.
    async fn email_changed(
        &self,
        mail: &ClaimedMail,
    ) -> Result<Option<templates::Rendered>, AttemptError> {
        let Some(customer) = mail.customer else {
            return Ok(None);
        };
        let (Some(account), Some(change)) = (
            self.recovery.account(customer).await?,
            self.recovery.email_change(customer).await?,
        ) else {
            return Ok(None);
        };
        let ttl = self.email_change.revert_ttl;
        // The token restores the run's original address, whoever's mailbox the notice
        // reaches: a second change's link hands its reader nothing but the owner's address.
        let token = self
            .issue_for(&account, &change.original, TokenPurpose::Revert, ttl)
            .await?;
        let s = &self.settings;
        let link = format!("{}/revert-email?token={token}", s.public_base_url);
        let name = account.personal.first_name.as_str().to_owned();
        let masked = masked_email(&account.personal.email);
        let days = ttl.as_secs().div_ceil(86_400);
        Ok(Some(templates::email_changed(
            &name, &masked, &link, &token, days,
        )?))
    }

    /// The customer of a row queued for them, if the row's email is still theirs.
    async fn account_at(&self, mail: &ClaimedMail) -> Result<Option<Account>, StoreError> {
        let Some(customer) = mail.customer else {
            return Ok(None);
        };
        Ok(self.recovery.account(customer).await?.filter(|a| {
            a.personal.email.as_str().to_lowercase() == mail.email.as_str().to_lowercase()
        }))
    }

    /// A new token for the customer's current address, stored hashed; a new reset token
    /// voids the older ones.
    async fn issue(
        &self,
        account: &Account,
        purpose: TokenPurpose,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        self.issue_for(account, &account.personal.email, purpose, ttl)
            .await
    }

    /// A new token bound to `email` (for a revert: the address it puts back).
    async fn issue_for(
        &self,
        account: &Account,
        email: &Email,
        purpose: TokenPurpose,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        let (text, hash) = token::generate();
        let now = self.now_ms();
        let issued = IssuedToken {
            hash,
            purpose,
            customer: account.id,
            email: email.clone(),
            created_at: now,
            expires_at: now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
        };
        self.recovery
            .issue_token(&issued, purpose == TokenPurpose::Reset)
            .await?;
        Ok(text)
    }
}
