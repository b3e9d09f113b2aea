//! Tokens in mails: 256 random bits, base64url without padding (43 characters); only their
//! SHA-256 is stored.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

/// Length of a token in its text form.
pub const TOKEN_CHARS: usize = 43;

/// A new token and the hash under which it is stored.
pub fn generate() -> (String, [u8; 32]) {
    let bytes: [u8; 32] = rand::random();
    let text = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&text);
    (text, hash)
}

fn hash(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The stored hash of a presented token; `None` when it cannot be one of ours (so a
/// malformed token never reaches the database).
pub fn parse(text: &str) -> Option<[u8; 32]> {
    let decoded = URL_SAFE_NO_PAD.decode(text).ok()?;
    (text.len() == TOKEN_CHARS && decoded.len() == 32).then(|| hash(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_to_their_hash() {
        let (text, stored) = generate();
        assert_eq!(text.len(), TOKEN_CHARS);
        assert_eq!(parse(&text), Some(stored));
        assert_ne!(generate().0, text, "random");
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let (text, _) = generate();
        for bad in [
            "",
            "abc",
            &text[..42],
            &format!("{text}A"),
            &format!("{}=", &text[..42]),
            "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
