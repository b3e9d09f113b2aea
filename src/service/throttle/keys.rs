//! What each limit counts, as types: the Redis keys they render and the metric label of
//! the limit. The key names are those existing counters live under (and every replica of
//! a mixed fleet uses): they do not change, byte for byte.
//!
//! Keys hold SHA-256 digests of what they count, never an email or an address in clear.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use crate::domain::EmailKey;

/// A lockout counter: failed logins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockoutKey {
    /// Failed logins of one email from one client address (limit `email_ip`).
    EmailAddress {
        email: EmailKey,
        client: Option<IpAddr>,
    },
    /// Failed logins from one client address, any email (limit `ip`).
    Address(Option<IpAddr>),
    /// Every address's counter of one email: the family a password reset clears.
    Email(EmailKey),
}

impl LockoutKey {
    /// The labels of the lockout limits, so that each is a series from the start.
    pub const LABELS: [&'static str; 2] = ["email_ip", "ip"];

    /// The limit's label in `login_throttled_total` and `login_lockouts_total`.
    pub fn label(&self) -> &'static str {
        match self {
            LockoutKey::EmailAddress { .. } | LockoutKey::Email(_) => "email_ip",
            LockoutKey::Address(_) => "ip",
        }
    }

    /// The counter's family and member, hashed.
    pub(super) fn counter(&self) -> LockKey {
        match self {
            LockoutKey::EmailAddress { email, client } => {
                LockKey::new("login", &login_email(email), &address(*client))
            }
            LockoutKey::Address(client) => LockKey::new("login-ip", &address(*client), ""),
            LockoutKey::Email(email) => LockKey::new("login", &login_email(email), ""),
        }
    }
}

/// A window counter: at most so many hits an hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowKey {
    /// Signups from one client address (limit `signup_ip`).
    Signup(Option<IpAddr>),
    /// Reset and verification mails asked for from one client address (limit `ip`).
    MailAddress(IpAddr),
    /// Reset and verification mails to one email (limit `email`).
    MailEmail(EmailKey),
}

impl WindowKey {
    /// The labels of the signup limit in `login_throttled_total`.
    pub const SIGNUP_LABELS: [&'static str; 1] = ["signup_ip"];
    /// The labels of the mail limits in `mail_requests_limited_total`.
    pub const MAIL_LABELS: [&'static str; 2] = ["email", "ip"];

    /// The limit's label: in `login_throttled_total` for signups,
    /// `mail_requests_limited_total` for mails.
    pub fn label(&self) -> &'static str {
        match self {
            WindowKey::Signup(_) => "signup_ip",
            WindowKey::MailAddress(_) => "ip",
            WindowKey::MailEmail(_) => "email",
        }
    }

    /// The Redis key of the counter (also the key of this replica's own table).
    pub(super) fn render(&self) -> String {
        match self {
            WindowKey::Signup(client) => format!("throttle:signup:{}", digest(&address(*client))),
            WindowKey::MailAddress(ip) => format!("throttle:mail-ip:{}", digest(&ip.to_string())),
            WindowKey::MailEmail(email) => {
                format!("throttle:mail-email:{}", digest(&login_email(email)))
            }
        }
    }
}

/// What the login limits count a client by: its address, `unknown` without one.
fn address(client: Option<IpAddr>) -> String {
    client.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

/// The email as the limits count it: its key, one for every spelling the database takes
/// for it (rule 15.3); an ASCII address in lower case, as before keys were derived.
fn login_email(email: &EmailKey) -> String {
    email.as_str().to_owned()
}

/// A lockout counter's key. `family` groups keys that can be cleared together (all the
/// addresses of one email).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct LockKey {
    pub(super) family: String,
    pub(super) member: String,
}

impl LockKey {
    /// `kind` names the limit (`login`, `login-ip`); `family` and `member` are hashed.
    fn new(kind: &str, family: &str, member: &str) -> Self {
        Self {
            family: format!("{kind}:{}", digest(family)),
            member: digest(member),
        }
    }

    /// The Redis key of the counter and of its family's "cleared at" mark: one hash tag,
    /// so that both live on one cluster slot for the script.
    pub(super) fn redis_keys(&self) -> [String; 2] {
        [
            format!("throttle:{{{}}}:{}", self.family, self.member),
            format!("throttle:{{{}}}:cleared", self.family),
        ]
    }
}

/// 64 bits of SHA-256, in hex: collisions are out of reach, and nothing readable is stored.
fn digest(text: &str) -> String {
    let hash = Sha256::digest(text.as_bytes());
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(text: &str) -> EmailKey {
        EmailKey::ascii_folded(&crate::domain::Email::parse(text).unwrap())
    }

    /// The key names as the service wrote them before the keys were typed (formats kept
    /// here literally): existing counters must still be found.
    #[test]
    fn keys_render_the_names_counters_live_under() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let pair = LockoutKey::EmailAddress {
            email: email("Ann@B.co"),
            client: Some(ip),
        };
        assert_eq!(
            pair.counter().redis_keys(),
            [
                format!(
                    "throttle:{{login:{}}}:{}",
                    digest("ann@b.co"),
                    digest("10.0.0.1")
                ),
                format!("throttle:{{login:{}}}:cleared", digest("ann@b.co")),
            ]
        );
        assert_eq!(
            LockoutKey::Address(None).counter().redis_keys()[0],
            format!("throttle:{{login-ip:{}}}:{}", digest("unknown"), digest(""))
        );
        assert_eq!(
            LockoutKey::Email(email("ann@b.co")).counter().family,
            pair.counter().family,
            "a reset clears the family of every address"
        );
        assert_eq!(
            WindowKey::Signup(Some(ip)).render(),
            format!("throttle:signup:{}", digest("10.0.0.1"))
        );
        assert_eq!(
            WindowKey::MailAddress(ip).render(),
            format!("throttle:mail-ip:{}", digest("10.0.0.1"))
        );
        assert_eq!(
            WindowKey::MailEmail(email("Ann@B.co")).render(),
            format!("throttle:mail-email:{}", digest("ann@b.co"))
        );
        assert_eq!(digest("a"), "ca978112ca1bbdca");
    }

    #[test]
    fn labels_are_the_metric_values() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let pair = LockoutKey::EmailAddress {
            email: email("a@b.co"),
            client: None,
        };
        assert_eq!(
            [pair.label(), LockoutKey::Address(None).label()],
            LockoutKey::LABELS
        );
        assert_eq!([WindowKey::Signup(None).label()], WindowKey::SIGNUP_LABELS);
        assert_eq!(
            [
                WindowKey::MailEmail(email("a@b.co")).label(),
                WindowKey::MailAddress(ip).label()
            ],
            WindowKey::MAIL_LABELS
        );
    }
}
