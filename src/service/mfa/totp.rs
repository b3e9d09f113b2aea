//! RFC 6238 with what every authenticator app reads by default: SHA-1, 6 digits, 30 s
//! steps. The arithmetic is `totp-rs`'s; which steps count, and that a step is used only
//! once, is decided here and in the store.

use qrcode::{QrCode, render::svg};
use totp_rs::{Algorithm, TOTP};

pub const DIGITS: usize = 6;
pub const STEP_SECONDS: u64 = 30;
/// A secret's length: 160 bits, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;

/// What an enrolment shows the customer once.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// Base32 without padding.
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

fn totp(secret: &[u8], issuer: Option<String>, account: String) -> TOTP {
    // Unchecked: the length is ours (160 bits), and a label may hold a `:` (it is encoded).
    TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP_SECONDS,
        secret.to_vec(),
        issuer,
        account,
    )
}

pub fn new_secret() -> Vec<u8> {
    rand::random::<[u8; SECRET_BYTES]>().to_vec()
}

/// The URI and QR code an authenticator app scans: `issuer:account`.
pub fn enrolment(secret: &[u8], issuer: &str, account: &str) -> Enrolment {
    let issuer = issuer.replace(':', " ");
    let totp = totp(secret, Some(issuer), account.to_owned());
    let otpauth_uri = totp.get_url();
    let qr_svg = QrCode::new(otpauth_uri.as_bytes())
        .map(|code| {
            code.render::<svg::Color<'_>>()
                .min_dimensions(200, 200)
                .quiet_zone(true)
                .build()
        })
        .unwrap_or_default();
    Enrolment {
        secret: totp.get_secret_base32(),
        otpauth_uri,
        qr_svg,
    }
}

/// The step a time falls in.
pub fn step_of(unix_secs: u64) -> i64 {
    i64::try_from(unix_secs / STEP_SECONDS).unwrap_or(i64::MAX)
}

/// The code of one step.
pub fn code_at(secret: &[u8], step: i64) -> String {
    let time = u64::try_from(step)
        .unwrap_or(0)
        .saturating_mul(STEP_SECONDS);
    totp(secret, None, String::new()).generate(time)
}

/// A code as typed: six digits, spaces allowed between them.
pub fn normalise(code: &str) -> Option<String> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == DIGITS && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// The step whose code `code` is, among the one of `unix_secs` and those one before and
/// after it (a clock a step off either way); compared in constant time.
pub fn matching_step(secret: &[u8], code: &str, unix_secs: u64) -> Option<i64> {
    let now = step_of(unix_secs);
    let mut found = None;
    for step in [now - 1, now, now + 1] {
        let expected = code_at(secret, step);
        let same: bool = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), code.as_bytes()).into();
        if same && found.is_none() {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (8 digits there; the same arithmetic at 6 keeps the
    /// last six).
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, expected) in [
            (59u64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            let eight = TOTP::new_unchecked(
                Algorithm::SHA1,
                8,
                1,
                30,
                secret.to_vec(),
                None,
                String::new(),
            );
            assert_eq!(eight.generate(time), expected, "T={time}");
            assert_eq!(code_at(secret, step_of(time)), expected[2..], "T={time}");
        }
    }

    #[test]
    fn a_code_counts_one_step_early_or_late_and_no_further() {
        let secret = new_secret();
        let now = 1_800_000_015;
        let step = step_of(now);
        for offset in [-1, 0, 1] {
            let code = code_at(&secret, step + offset);
            assert_eq!(matching_step(&secret, &code, now), Some(step + offset));
        }
        for offset in [-3, -2, 2, 3] {
            let code = code_at(&secret, step + offset);
            // A six-digit collision with a neighbour is possible, but not for all four.
            if matching_step(&secret, &code, now).is_some() {
                assert_ne!(code, code_at(&secret, step + offset + 10));
            }
        }
        assert_eq!(
            matching_step(&secret, &code_at(&secret, step - 2), now).filter(|s| *s == step - 2),
            None
        );
    }

    #[test]
    fn codes_are_read_as_typed() {
        assert_eq!(normalise("123 456").as_deref(), Some("123456"));
        assert_eq!(normalise("12345"), None);
        assert_eq!(normalise("12345a"), None);
        assert_eq!(normalise("１２３４５６"), None);
    }

    #[test]
    fn the_enrolment_uri_names_the_issuer_and_account_and_the_qr_is_svg() {
        let secret = b"12345678901234567890";
        let e = enrolment(secret, "Saga Shop", "ming@example.com");
        assert_eq!(e.secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(
            e.otpauth_uri,
            "otpauth://totp/Saga%20Shop:ming%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Saga%20Shop"
        );
        assert!(
            e.qr_svg.starts_with("<?xml") && e.qr_svg.contains("<svg"),
            "{}",
            &e.qr_svg[..60]
        );
    }
}
