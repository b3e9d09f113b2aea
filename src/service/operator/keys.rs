//! Operator API keys (`ADMIN_API_KEYS`): named, several at once so that they can be
//! rotated, secrets of at least 32 characters, compared in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::Secret;

/// Shortest secret accepted.
pub const MIN_SECRET_CHARS: usize = 32;

/// One configured key; the secret never prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub name: String,
    pub secret: Secret,
}

/// `name.secret,name.secret`: names of letters, digits, `-` and `_`, unique; secrets of
/// at least 32 characters. `None` when any entry is malformed.
pub fn parse(text: &str) -> Option<Vec<ApiKey>> {
    let mut keys: Vec<ApiKey> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, secret) = entry.split_once('.')?;
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let secret_ok = secret.chars().count() >= MIN_SECRET_CHARS
            && secret.chars().all(|c| c.is_ascii_graphic() && c != ',');
        if !name_ok || !secret_ok || keys.iter().any(|k| k.name == name) {
            return None;
        }
        keys.push(ApiKey {
            name: name.to_owned(),
            secret: Secret::new(secret),
        });
    }
    Some(keys)
}

/// The keys as they are checked: a digest of each whole `name.secret`.
pub struct ApiKeys {
    keys: Vec<(String, [u8; 32])>,
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl ApiKeys {
    pub fn new(keys: &[ApiKey]) -> Self {
        Self {
            keys: keys
                .iter()
                .map(|k| {
                    (
                        k.name.clone(),
                        digest(&format!("{}.{}", k.name, k.secret.expose())),
                    )
                })
                .collect(),
        }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(name, _)| name.as_str())
    }

    /// The name of the key in an `Authorization: ApiKey <name>.<secret>` header; `None`
    /// for a missing, malformed or unknown one. Every configured key is compared, each
    /// in constant time over equal-length digests, so the time tells nothing about how
    /// much of a secret was right.
    pub fn check(&self, authorization: &str) -> Option<&str> {
        let (scheme, presented) = authorization.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("apikey") {
            return None;
        }
        let presented = digest(presented.trim());
        let mut found = None;
        for (name, key) in &self.keys {
            if bool::from(presented.ct_eq(key)) {
                found = Some(name.as_str());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn keys_parse_and_check() {
        let keys = parse(&format!("ops.{S}, ci-2.{S}x")).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(!format!("{keys:?}").contains(S), "secrets never print");
        let keys = ApiKeys::new(&keys);
        assert_eq!(keys.check(&format!("ApiKey ops.{S}")), Some("ops"));
        assert_eq!(keys.check(&format!("apikey ci-2.{S}x")), Some("ci-2"));
        for bad in [
            String::new(),
            format!("ops.{S}"),
            format!("Bearer ops.{S}"),
            format!("ApiKey ops.{S}x"),
            format!("ApiKey ci-2.{S}"),
            "ApiKey ops".to_owned(),
        ] {
            assert_eq!(keys.check(&bad), None, "{bad}");
        }
    }

    #[test]
    fn short_or_malformed_keys_are_refused() {
        assert_eq!(parse("").unwrap(), vec![]);
        for bad in [
            "ops.short".to_owned(),
            format!("ops{S}"),
            format!(".{S}"),
            format!("o p.{S}"),
            format!("ops.{S},ops.{S}"),
            format!("ops.{}", &S[..31]),
        ] {
            assert!(parse(&bad).is_none(), "{bad}");
        }
    }
}
