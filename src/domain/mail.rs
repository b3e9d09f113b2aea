//! Mails the service sends (SPEC section 13) and the account view that shows whether the
//! email was verified.

use super::customer::{CustomerId, PersonalInfo};

/// What a queued mail is for; its template and the token it carries follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// A link with a reset token, to whoever owns the email (if anyone does).
    PasswordReset,
    /// A link with a verification token, to the customer's current email.
    EmailVerification,
    /// A notice that the password was reset; no token.
    PasswordChanged,
}

impl MailKind {
    pub const ALL: [MailKind; 3] = [
        MailKind::PasswordReset,
        MailKind::EmailVerification,
        MailKind::PasswordChanged,
    ];

    /// The label in metrics and the `kind` column.
    pub fn label(self) -> &'static str {
        match self {
            MailKind::PasswordReset => "password_reset",
            MailKind::EmailVerification => "email_verification",
            MailKind::PasswordChanged => "password_changed",
        }
    }

    pub fn parse(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.label() == label)
    }
}

/// What a token in a mail allows; a token of one purpose is never accepted for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenPurpose {
    Reset,
    Verify,
}

impl TokenPurpose {
    pub fn label(self) -> &'static str {
        match self {
            TokenPurpose::Reset => "reset",
            TokenPurpose::Verify => "verify",
        }
    }
}

/// A customer as `GET /info/account` and the operator API show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: CustomerId,
    pub personal: PersonalInfo,
    pub active: bool,
    /// True while the current email is the one last proven by a verification link or a
    /// password reset.
    pub email_verified: bool,
    /// Unix milliseconds; `None` for a row written without it.
    pub created_at: Option<i64>,
}
