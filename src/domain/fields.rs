//! Validated input values. Each type can only hold a value that passed its `parse`, so the
//! services and the storage never see an invalid one. Limits follow the database columns
//! (SPEC section 4): a value that would not fit is rejected here as a client error.

use std::fmt;

use super::format::is_format_character;

/// Which field was rejected and why; for logs and test assertions, never for clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: &'static str,
    pub reason: &'static str,
}

fn reject<T>(field: &'static str, reason: &'static str) -> Result<T, FieldError> {
    Err(FieldError { field, reason })
}

/// What a MySQL `text` column holds.
const MAX_TEXT_BYTES: usize = 65_535;

/// Shared rules for free text: present, not blank, at most `max_chars` characters and no
/// control characters (except newlines and tabs where `multiline`). Single-line fields
/// (names, phone numbers) refuse format characters too; a multi-line address keeps them
/// (the marks of right-to-left text belong there).
fn check_text(
    field: &'static str,
    value: &str,
    max_chars: usize,
    multiline: bool,
) -> Result<(), FieldError> {
    if value.trim().is_empty() {
        return reject(field, "empty");
    }
    // A MySQL `text` column counts bytes; the varchar columns count characters.
    if value.chars().count() > max_chars || value.len() > MAX_TEXT_BYTES {
        return reject(field, "too long");
    }
    let allowed_control = |c: char| multiline && (c == '\n' || c == '\r' || c == '\t');
    if value.chars().any(|c| c.is_control() && !allowed_control(c)) {
        return reject(field, "control character");
    }
    if !multiline && value.chars().any(is_format_character) {
        return reject(field, "format character");
    }
    Ok(())
}

macro_rules! text_field {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr, $multiline:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, FieldError> {
                let value = value.into();
                check_text($field, &value, $max, $multiline)?;
                Ok(Self(value))
            }

            /// A value read back from storage: kept as it is, even if it predates these rules.
            pub fn from_stored(value: String) -> Self {
                Self(value)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

text_field!(
    /// A first or last name: `varchar(50)`.
    Name, "name", 50, false
);
text_field!(
    /// A phone number: `varchar(20)`, unique. Its format is the shop's business, not ours.
    PhoneNumber, "phone_number", 20, false
);
text_field!(
    /// A shipping address: a MySQL `text` column holds 65,535 bytes.
    Address, "address", 65_535, true
);

/// An email address as the Go validator's `email` rule accepts it: a dot-atom local part,
/// a domain of at least two labels whose last starts and ends with a letter. Like that rule
/// it sets no length on the parts; the whole is limited by the `varchar(320)` column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

const MAX_EMAIL_CHARS: usize = 320;

impl Email {
    pub fn parse(value: impl Into<String>) -> Result<Self, FieldError> {
        let value = value.into();
        if value.is_empty() {
            return reject("email", "empty");
        }
        if value.chars().count() > MAX_EMAIL_CHARS {
            return reject("email", "too long");
        }
        if value.chars().any(is_format_character) {
            return reject("email", "format character");
        }
        let Some((local, domain)) = value.split_once('@') else {
            return reject("email", "no @");
        };
        if !valid_local_part(local) {
            return reject("email", "invalid local part");
        }
        if !valid_domain(domain) {
            return reject("email", "invalid domain");
        }
        Ok(Self(value))
    }

    /// A value read back from storage: kept as it is, even if it predates these rules.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_international(c: char) -> bool {
    // The Go validator's Unicode ranges, minus the surrogates Rust chars cannot hold.
    matches!(c, '\u{A0}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFEF}')
}

fn valid_local_part(local: &str) -> bool {
    const ATEXT_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";
    !local.is_empty()
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom.chars().all(|c| {
                    c.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(c) || is_international(c)
                })
        })
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || is_international(c))
    };
    let top_ok = |label: &str| {
        let letter =
            |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphabetic() || is_international(c));
        letter(label.chars().next()) && letter(label.chars().last())
    };
    labels.iter().all(|l| label_ok(l)) && labels.last().is_some_and(|l| top_ok(l))
}

/// A plain-text password: 8 to 128 characters. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    /// A password for a new account: 8..=128 characters.
    pub fn parse(value: impl Into<String>) -> Result<Self, FieldError> {
        let value = value.into();
        let chars = value.chars().count();
        if chars < Self::MIN_CHARS {
            return reject("password", "too short");
        }
        if chars > Self::MAX_CHARS {
            return reject("password", "too long");
        }
        Ok(Self(value))
    }

    /// A password offered at login: any non-empty value that signup could have accepted.
    /// Accounts created by the Go service may predate the minimum, so it is not enforced.
    pub fn parse_login(value: impl Into<String>) -> Result<Self, FieldError> {
        let value = value.into();
        if value.is_empty() {
            return reject("password", "empty");
        }
        if value.chars().count() > Self::MAX_CHARS {
            return reject("password", "too long");
        }
        Ok(Self(value))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ordinary_emails() {
        for ok in [
            "a@b.co",
            "john.doe+tag@example.com",
            "x_y@sub.example.org",
            "ü@exämple.de",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_malformed_emails() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@@b.com",
            "a@b@c.com",
            "a b@c.com",
            ".a@b.com",
            "a.@b.com",
            "a..b@c.com",
            "a@-b.com",
            "a@b-.com",
            "a@b..com",
            "a@b.c1",
            "a@1.2.3.4",
            "a@b.com\n",
            "a\u{0}@b.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn email_length_follows_the_column() {
        let at_limit = format!("{}@b.com", "a".repeat(314));
        assert_eq!(at_limit.chars().count(), 320);
        assert!(
            Email::parse(at_limit).is_ok(),
            "320 characters fit the column"
        );
        assert!(
            Email::parse(format!("{}@b.com", "a".repeat(315))).is_err(),
            "321 do not"
        );
    }

    #[test]
    fn password_bounds_count_characters_not_bytes() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse("é".repeat(128)).is_ok());
        assert!(Password::parse("é".repeat(129)).is_err());
        assert!(Password::parse_login("x").is_ok());
        assert!(Password::parse_login("").is_err());
    }

    #[test]
    fn password_is_never_printed() {
        let p = Password::parse("hunter2hunter2").unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn text_fields_follow_columns() {
        assert!(Name::parse("a".repeat(50)).is_ok());
        assert!(Name::parse("a".repeat(51)).is_err());
        assert!(Name::parse("   ").is_err());
        assert!(Name::parse("a\tb").is_err());
        assert!(PhoneNumber::parse("+886 912 345 678").is_ok());
        assert!(PhoneNumber::parse("1".repeat(21)).is_err());
        assert!(Address::parse("1 Main St\nSpringfield").is_ok());
        assert!(Address::parse("").is_err());
        assert!(Address::parse("a".repeat(65_535)).is_ok());
        assert!(
            Address::parse("é".repeat(32_768)).is_err(),
            "over 65,535 bytes"
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = Email::parse(s.clone());
            let _ = Name::parse(s.clone());
            let _ = Password::parse(s);
        }

        #[test]
        fn simple_addresses_round_trip(local in "[a-z0-9]{1,20}", domain in "[a-z]{1,20}", tld in "[a-z]{2,6}") {
            let email = format!("{local}@{domain}.{tld}");
            prop_assert_eq!(Email::parse(email.clone()).unwrap().into_inner(), email);
        }

        #[test]
        fn names_within_limit_are_kept_verbatim(name in "[A-Za-z][A-Za-z '-]{0,49}") {
            prop_assert_eq!(Name::parse(name.clone()).unwrap().into_inner(), name);
        }
    }

    /// What every parser promises for any input: no panic, and either the value kept as it
    /// was given or an error naming the parser's own field.
    fn check_contract<T>(
        field: &str,
        input: &str,
        parsed: Result<T, FieldError>,
        inner: impl FnOnce(T) -> String,
    ) -> Result<(), TestCaseError> {
        match parsed {
            Ok(value) => prop_assert_eq!(inner(value), input),
            Err(e) => prop_assert_eq!(e.field, field, "{}", e),
        }
        Ok(())
    }

    /// Any characters at all, control and unassigned ones included, up to past the limits.
    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,400}",
            "[\\x00-\\x20a@.\u{7f}\u{85}\u{a0}\u{2028}é-]{0,60}",
            proptest::collection::vec(any::<char>(), 0..80).prop_map(String::from_iter),
        ]
    }

    /// A dot-atom part of an address: ASCII, the RFC's specials and international letters.
    fn atom() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~\u{e9}\u{4e2d}-]{1,12}"
    }

    fn valid_email() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(atom(), 1..4),
            proptest::collection::vec("[a-z0-9\u{e9}]([a-z0-9-]{0,8}[a-z0-9])?", 1..4),
            "[a-z\u{e4}]([a-z0-9]{0,4}[a-z])?",
        )
            .prop_map(|(local, labels, top)| {
                format!("{}@{}.{top}", local.join("."), labels.join("."))
            })
    }

    /// Text without control or format characters that is not blank.
    fn plain_text(max: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!(
            "[^\\p{{Cc}}\\p{{Cf}}]{{0,{}}}[^\\p{{Cc}}\\p{{Cf}}\\s]",
            max - 1
        ))
        .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_parser_keeps_its_input_or_names_its_field(s in any_text()) {
            check_contract("email", &s, Email::parse(s.clone()), Email::into_inner)?;
            check_contract("name", &s, Name::parse(s.clone()), Name::into_inner)?;
            check_contract("phone_number", &s, PhoneNumber::parse(s.clone()), PhoneNumber::into_inner)?;
            check_contract("address", &s, Address::parse(s.clone()), Address::into_inner)?;
            check_contract("password", &s, Password::parse(s.clone()), |p| p.expose().to_owned())?;
            check_contract("password", &s, Password::parse_login(s.clone()), |p| p.expose().to_owned())?;
        }

        #[test]
        fn valid_values_round_trip(
            email in valid_email(),
            name in plain_text(50),
            phone in plain_text(20),
            address in proptest::collection::vec(plain_text(60), 1..5),
            password in ".{8,128}",
        ) {
            prop_assert_eq!(Email::parse(email.clone()).map(Email::into_inner), Ok(email));
            prop_assert_eq!(Name::parse(name.clone()).map(Name::into_inner), Ok(name));
            prop_assert_eq!(PhoneNumber::parse(phone.clone()).map(PhoneNumber::into_inner), Ok(phone));
            let address = address.join("\r\n\t");
            prop_assert_eq!(Address::parse(address.clone()).map(Address::into_inner), Ok(address));
            prop_assert_eq!(Password::parse(password.clone()).map(|p| p.expose().to_owned()), Ok(password));
        }

        #[test]
        fn invalid_values_get_their_reason(
            blank in "[ \t\r\n\u{a0}\u{3000}]{0,10}",
            long_name in "[a-zé]{51,80}",
            long_phone in "[0-9+ ]{21,40}",
            name in plain_text(40),
            at in any::<prop::sample::Index>(),
            control in "[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f\u{80}-\u{9f}]",
            email in valid_email(),
            short in ".{0,7}",
        ) {
            let reason = |r: Result<Name, FieldError>| r.map_err(|e| e.reason);
            prop_assert_eq!(reason(Name::parse(blank.clone())), Err("empty"));
            prop_assert_eq!(Address::parse(blank).map_err(|e| e.reason), Err("empty"));
            prop_assert_eq!(reason(Name::parse(long_name)), Err("too long"));
            prop_assert_eq!(PhoneNumber::parse(long_phone).map_err(|e| e.reason), Err("too long"));
            // A control character anywhere in an otherwise good value.
            let i = name.char_indices().map(|(i, _)| i).nth(at.index(name.chars().count())).unwrap_or(0);
            let with_control = format!("{}{control}{}", &name[..i], &name[i..]);
            prop_assert_eq!(reason(Name::parse(with_control.clone())), Err("control character"));
            prop_assert_eq!(Address::parse(with_control).map_err(|e| e.reason), Err("control character"));
            prop_assert_eq!(Email::parse(email.replace('@', "")).map_err(|e| e.reason), Err("no @"));
            prop_assert_eq!(Email::parse(format!(".{email}")).map_err(|e| e.reason), Err("invalid local part"));
            prop_assert_eq!(Email::parse(format!("{email}.")).map_err(|e| e.reason), Err("invalid domain"));
            prop_assert_eq!(Password::parse(short).map(|_| ()).map_err(|e| e.reason), Err("too short"));
        }
    }
}
