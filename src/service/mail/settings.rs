//! How mails are made and sent, and the retry schedule that follows from it.

use std::time::Duration;

use super::smtp::SmtpUrl;

/// How mails are made and sent.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// SPEC section 13; `None` = `.eml` files under `DATA_DIR/mail/`.
    pub smtp_url: Option<SmtpUrl>,
    /// `MAIL_FROM`.
    pub from: lettre::message::Mailbox,
    /// `PUBLIC_BASE_URL` without a trailing `/`: links are built from it, never from a
    /// request's `Host`.
    pub public_base_url: String,
    pub reset_ttl: Duration,
    pub verify_ttl: Duration,
    /// Attempts before a mail is given up.
    pub max_attempts: u32,
    /// Delay before the first retry; each further retry doubles it, up to `MAX_RETRY_DELAY`.
    pub retry_base: Duration,
    /// How often the outbox is looked at when nothing woke the sender.
    pub poll: Duration,
    /// Longest wait for the SMTP server on one mail.
    pub send_timeout: Duration,
    /// Mails sent at once by one replica.
    pub concurrency: usize,
}

/// Rule 15.2: what protects an email change (`PUT /info/person`), read by the account
/// service (the password) and the sender (the revert link, the reset hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailChangeSettings {
    /// `EMAIL_CHANGE_REQUIRES_PASSWORD`: a changed email needs `current_password`.
    pub requires_password: bool,
    /// `EMAIL_REVERT_SECONDS`: the life of a revert link, and how far apart changes may be
    /// to count as one run (whose links all put back the address before the first).
    pub revert_ttl: Duration,
    /// `EMAIL_CHANGE_RESET_HOLD_SECONDS`: how long after a change a reset asked for by
    /// email (`/auth/password/forgot`) sends nothing; 0 = no hold.
    pub reset_hold: Duration,
}

impl Default for EmailChangeSettings {
    /// The defaults of the settings table.
    fn default() -> Self {
        Self {
            requires_password: false,
            revert_ttl: Duration::from_secs(604_800),
            reset_hold: Duration::from_secs(86_400),
        }
    }
}

/// Longest delay between two attempts of one mail.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

impl MailSettings {
    /// The delay after the `attempts`-th failed attempt.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.retry_base
            .checked_mul(factor)
            .unwrap_or(MAX_RETRY_DELAY)
            .min(MAX_RETRY_DELAY)
    }

    /// How long a claimed row stays this replica's: longer than any one attempt can take,
    /// so that another replica only re-sends a mail whose sender died.
    pub fn lease(&self) -> Duration {
        self.send_timeout * 2 + Duration::from_secs(30)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_ceiling() {
        let settings = MailSettings {
            smtp_url: None,
            from: "noreply@example.com".parse().unwrap(),
            public_base_url: "http://localhost".into(),
            reset_ttl: Duration::from_secs(1800),
            verify_ttl: Duration::from_secs(86400),
            max_attempts: 10,
            retry_base: Duration::from_secs(10),
            poll: Duration::from_secs(1),
            send_timeout: Duration::from_secs(30),
            concurrency: 8,
        };
        assert_eq!(settings.backoff(1), Duration::from_secs(10));
        assert_eq!(settings.backoff(2), Duration::from_secs(20));
        assert_eq!(settings.backoff(4), Duration::from_secs(80));
        assert_eq!(settings.backoff(40), MAX_RETRY_DELAY);
        assert!(settings.lease() > settings.send_timeout);
    }
}
