//! What each limit counts, as types: the Redis keys they render and the metric label of
//! the limit. The key names are those existing counters live under (and every replica of
//! a mixed fleet uses): they do not change, byte for byte.
//!
//! Keys hold SHA-256 digests of what they count, never an email or an address in clear.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use crate::domain::{CustomerId, EmailKey};

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
    /// Failed logins of one email from every address (limit `account`, rule 15.5).
    Account(EmailKey),
    /// Failed password checks of a signed-in customer: password change, account deletion
    /// (limit `customer`, rule 15.4).
    Customer(CustomerId),
}

impl LockoutKey {
    /// The labels of the lockout limits, so that each is a series from the start.
    pub const LABELS: [&'static str; 4] = ["email_ip", "ip", "account", "customer"];

    /// The limit's label in `login_throttled_total` and `login_lockouts_total`.
    pub fn label(&self) -> &'static str {
        match self {
            LockoutKey::EmailAddress { .. } | LockoutKey::Email(_) => "email_ip",
            LockoutKey::Address(_) => "ip",
            LockoutKey::Account(_) => "account",
            LockoutKey::Customer(_) => "customer",
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
            LockoutKey::Account(email) => LockKey::new("login-account", &login_email(email), ""),
            LockoutKey::Customer(id) => LockKey::new("password-check", &id.to_string(), ""),
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
            WindowKey::MailAddress(ip) => {
                format!("throttle:mail-ip:{}", digest(&address(Some(*ip))))
            }
            WindowKey::MailEmail(email) => {
                format!("throttle:mail-email:{}", digest(&login_email(email)))
            }
        }
    }
}

/// What the limits count a client by: its address, `unknown` without one. An IPv6 client
/// counts as its /64 (rule 15.5): one host holds a whole /64 and picks from it at will.
fn address(client: Option<IpAddr>) -> String {
    match client.map(|ip| ip.to_canonical()) {
        None => "unknown".to_owned(),
        Some(IpAddr::V4(ip)) => ip.to_string(),
        Some(IpAddr::V6(ip)) => {
            let network = u128::from(ip) & !(u128::MAX >> 64);
            format!("{}/64", std::net::Ipv6Addr::from(network))
        }
    }
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

    /// The Redis keys of the counter, of its family's "cleared at" mark and of its
    /// attempts in flight: one hash tag, so that all live on one cluster slot for the
    /// script.
    pub(super) fn redis_keys(&self) -> [String; 3] {
        [
            format!("throttle:{{{}}}:{}", self.family, self.member),
            format!("throttle:{{{}}}:cleared", self.family),
            format!("throttle:{{{}}}:{}:in-flight", self.family, self.member),
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
                format!(
                    "throttle:{{login:{}}}:{}:in-flight",
                    digest("ann@b.co"),
                    digest("10.0.0.1")
                ),
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

    /// Every address of one /64 is one client; IPv4, also written as mapped IPv6, is
    /// counted per address as before.
    #[test]
    fn an_ipv6_client_counts_as_its_slash_64() {
        let at = |text: &str| {
            LockoutKey::Address(Some(text.parse().unwrap()))
                .counter()
                .redis_keys()[0]
                .clone()
        };
        assert_eq!(
            at("2001:db8:1:2::1"),
            at("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(at("2001:db8:1:2::1"), at("2001:db8:1:3::1"));
        assert_eq!(at("::ffff:10.0.0.1"), at("10.0.0.1"));
        assert_ne!(at("10.0.0.1"), at("10.0.0.2"));
        assert_eq!(
            address(Some("2001:db8:1:2:3:4:5:6".parse().unwrap())),
            "2001:db8:1:2::/64"
        );
        let mail = |text: &str| WindowKey::MailAddress(text.parse().unwrap()).render();
        assert_eq!(mail("2001:db8::1"), mail("2001:db8::2"));
        let signup = |text: &str| WindowKey::Signup(Some(text.parse().unwrap())).render();
        assert_eq!(signup("2001:db8::1"), signup("2001:db8::ffff"));
    }

    #[test]
    fn labels_are_the_metric_values() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let pair = LockoutKey::EmailAddress {
            email: email("a@b.co"),
            client: None,
        };
        assert_eq!(
            [
                pair.label(),
                LockoutKey::Address(None).label(),
                LockoutKey::Account(email("a@b.co")).label(),
                LockoutKey::Customer(CustomerId(7)).label(),
            ],
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
