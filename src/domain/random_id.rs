//! 128-bit random ids and their text form, 22 characters of unpadded base64url. Session
//! ids (`sid`) and refresh token ids (`jti`) are both of this kind.
//!
//! The bits come from the caller (`rand::random()` in the session service): the domain
//! draws no randomness of its own, and the codec is written out here rather than taken
//! from a crate (the tests check it against `base64`).

use std::fmt;

/// 128 random bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RandomId([u8; 16]);

pub type SessionId = RandomId;
pub type TokenId = RandomId;

/// The base64url alphabet (RFC 4648 section 5).
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl RandomId {
    /// The id of these bits; they must come from a cryptographic generator.
    pub fn new(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The 22-character form; anything else is not an id. Only the canonical form is
    /// taken: the 4 bits after the 128 must be zero, so that one id has one text.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 22 {
            return None;
        }
        let mut bytes = [0u8; 16];
        let mut slots = bytes.iter_mut();
        let (mut acc, mut bits) = (0u32, 0u32);
        for c in text.bytes() {
            acc = (acc << 6) | sextet(c)?;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                *slots.next()? = (acc >> bits) as u8;
                acc &= (1 << bits) - 1;
            }
        }
        (acc == 0).then_some(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The 16 bytes as stored; anything else is not an id.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The 22 characters, without allocating.
    fn encode(&self) -> [u8; 22] {
        let symbol = |sextet: u32| {
            ALPHABET
                .get((sextet & 63) as usize)
                .copied()
                .unwrap_or(b'A')
        };
        let mut text = [b'A'; 22];
        let mut slots = text.iter_mut();
        let (mut acc, mut bits) = (0u32, 0u32);
        for &byte in &self.0 {
            acc = (acc << 8) | u32::from(byte);
            bits += 8;
            while bits >= 6 {
                bits -= 6;
                if let Some(slot) = slots.next() {
                    *slot = symbol(acc >> bits);
                }
            }
            acc &= (1 << bits) - 1;
        }
        if bits > 0
            && let Some(slot) = slots.next()
        {
            *slot = symbol(acc << (6 - bits));
        }
        text
    }
}

/// The value of one base64url character.
fn sextet(c: u8) -> Option<u32> {
    let value = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    };
    Some(u32::from(value))
}

impl fmt::Display for RandomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.encode();
        // Every byte of it is from the ASCII alphabet.
        f.write_str(std::str::from_utf8(&text).unwrap_or_default())
    }
}

impl fmt::Debug for RandomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ids_round_trip_through_22_characters() {
        let id = RandomId::new(*b"sixteen bytes!!!");
        let text = id.to_string();
        assert_eq!(text.len(), 22);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(RandomId::parse(&text), Some(id));
        assert_eq!(RandomId::parse(&text[1..]), None);
        assert_eq!(RandomId::parse(&format!("{text}A")), None);
        assert_eq!(RandomId::parse("!!!!!!!!!!!!!!!!!!!!!!"), None);
    }

    proptest! {
        #[test]
        fn any_text_parses_or_is_refused_without_panicking(s in "\\PC{0,40}") {
            if let Some(id) = RandomId::parse(&s) {
                prop_assert_eq!(id.to_string(), s);
            }
        }

        #[test]
        fn the_codec_is_base64url_without_padding(bytes in any::<[u8; 16]>(), s in "[A-Za-z0-9_-]{22}") {
            let id = RandomId::new(bytes);
            prop_assert_eq!(id.to_string(), URL_SAFE_NO_PAD.encode(bytes));
            let mut decoded = [0u8; 16];
            let expected = match URL_SAFE_NO_PAD.decode_slice(&s, &mut decoded) {
                Ok(16) => Some(RandomId::new(decoded)),
                _ => None,
            };
            prop_assert_eq!(RandomId::parse(&s), expected);
        }
    }
}
