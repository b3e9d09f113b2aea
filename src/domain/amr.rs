//! How a session was signed in (RFC 8176 `amr`, SPEC section 16): a small set, carried in
//! the tokens of the session so that a refresh mints it again; and what a customer
//! presents as a second factor.

use std::fmt;

/// A method of authentication, with its RFC 8176 name (`rec` is this service's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Password,
    Otp,
    RecoveryCode,
    HardwareKey,
    UserPresence,
    Federated,
}

impl Method {
    /// In the order tokens list them.
    pub const ALL: [Method; 6] = [
        Method::Password,
        Method::Otp,
        Method::RecoveryCode,
        Method::HardwareKey,
        Method::UserPresence,
        Method::Federated,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Password => "pwd",
            Method::Otp => "otp",
            Method::RecoveryCode => "rec",
            Method::HardwareKey => "hwk",
            Method::UserPresence => "user",
            Method::Federated => "fed",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of methods; empty for a password-only login, so that its tokens stay exactly the
/// Part I shape. Stored as its bits (`sessions.amr`).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Amr(u8);

impl Amr {
    pub const NONE: Amr = Amr(0);

    pub fn of(methods: &[Method]) -> Self {
        Self(methods.iter().fold(0, |bits, m| bits | m.bit()))
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn contains(self, method: Method) -> bool {
        self.0 & method.bit() != 0
    }

    pub fn methods(self) -> impl Iterator<Item = Method> {
        Method::ALL.into_iter().filter(move |m| self.contains(*m))
    }

    pub fn names(self) -> impl Iterator<Item = &'static str> {
        self.methods().map(Method::name)
    }

    pub fn bits(self) -> i16 {
        i16::from(self.0)
    }

    /// Bits a newer replica wrote that this one does not know are dropped.
    pub fn from_bits(bits: i16) -> Self {
        let known = Method::ALL.iter().fold(0u8, |all, m| all | m.bit());
        Self(u8::try_from(bits & 0xff).unwrap_or(0) & known)
    }
}

impl fmt::Debug for Amr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// What a customer presents as the second factor.
#[derive(Clone)]
pub enum Proof {
    /// A TOTP code, as typed.
    Totp(String),
    /// A recovery code, as typed.
    RecoveryCode(String),
}

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.method())
    }
}

impl Proof {
    /// Its label in metrics and in `methods`.
    pub fn method(&self) -> &'static str {
        match self {
            Proof::Totp(_) => "totp",
            Proof::RecoveryCode(_) => "recovery_code",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_keeps_its_methods_in_token_order_and_survives_storage() {
        let amr = Amr::of(&[Method::Otp, Method::Password]);
        assert_eq!(amr.names().collect::<Vec<_>>(), ["pwd", "otp"]);
        assert_eq!(Amr::from_bits(amr.bits()), amr);
        assert!(Amr::NONE.is_empty());
        assert_eq!(Amr::from_bits(0x40 | amr.bits()), amr);
        for m in Method::ALL {
            assert_eq!(Method::parse(m.name()), Some(m));
        }
    }
}
