//! Mails the service sends (SPEC section 13) and the account view that shows whether the
//! email was verified.

use super::customer::{CustomerId, PersonalInfo};
use super::fields::Email;

/// What a queued mail is for; its template and the token it carries follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// A link with a reset token, to whoever owns the email (if anyone does).
    PasswordReset,
    /// A link with a verification token, to the customer's current email.
    EmailVerification,
    /// A notice that the password was reset; no token.
    PasswordChanged,
    /// To the address an email change replaced (rule 15.2): the new address, masked, and a
    /// link with a revert token.
    EmailChanged,
    /// Notices of the second factor (SPEC section 16); no token.
    SecondFactorAdded,
    SecondFactorRemoved,
    /// With how many recovery codes are left when it is sent.
    RecoveryCodeUsed,
}

impl MailKind {
    pub const ALL: [MailKind; 7] = [
        MailKind::PasswordReset,
        MailKind::EmailVerification,
        MailKind::PasswordChanged,
        MailKind::EmailChanged,
        MailKind::SecondFactorAdded,
        MailKind::SecondFactorRemoved,
        MailKind::RecoveryCodeUsed,
    ];

    /// The label in metrics and the `kind` column.
    pub fn label(self) -> &'static str {
        match self {
            MailKind::PasswordReset => "password_reset",
            MailKind::EmailVerification => "email_verification",
            MailKind::PasswordChanged => "password_changed",
            MailKind::EmailChanged => "email_changed",
            MailKind::SecondFactorAdded => "second_factor_added",
            MailKind::SecondFactorRemoved => "second_factor_removed",
            MailKind::RecoveryCodeUsed => "recovery_code_used",
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
    /// Puts back the address an email change replaced (rule 15.2).
    Revert,
}

impl TokenPurpose {
    pub fn label(self) -> &'static str {
        match self {
            TokenPurpose::Reset => "reset",
            TokenPurpose::Verify => "verify",
            TokenPurpose::Revert => "revert",
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

/// An address as a notice names it to whoever reads the old mailbox: the first character of
/// the local part, `***`, and the domain (`a***@example.org`), so that the owner recognises
/// it without the mail handing it to anyone else.
pub fn masked_email(email: &Email) -> String {
    let text = email.as_str();
    let (local, domain) = text.rsplit_once('@').unwrap_or((text, ""));
    let first: String = local.chars().take(1).collect();
    format!("{first}***@{domain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_address_keeps_the_first_character_and_the_domain() {
        let email = |s: &str| Email::from_stored(s.to_owned());
        assert_eq!(
            masked_email(&email("alice@example.org")),
            "a***@example.org"
        );
        assert_eq!(masked_email(&email("b@x.io")), "b***@x.io");
        // One character, not one byte.
        assert_eq!(masked_email(&email("élodie@exemple.fr")), "é***@exemple.fr");
        // The last `@` separates the domain (a quoted local part may hold one).
        assert_eq!(masked_email(&email("\"a@b\"@c.org")), "\"***@c.org");
    }
}
