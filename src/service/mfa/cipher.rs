//! `MFA_ENCRYPTION_KEY`: TOTP secrets are sealed with AES-256-GCM under a key derived from
//! it, bound to their customer (a sealed secret copied to another row does not open), and
//! recovery codes are stored as HMAC-SHA256 digests under a second derived key, so that a
//! copy of the database alone can neither read a secret nor test guesses of a code.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::CustomerId;

/// The first byte of a sealed secret: which layout (and key) sealed it.
const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 12;

/// The derived keys. Never printed: its `Debug` says nothing.
#[derive(Clone)]
pub struct MfaKey {
    seal: Aes256Gcm,
    codes: [u8; 32],
}

impl std::fmt::Debug for MfaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaKey(..)")
    }
}

fn derive(master: &[u8; 32], purpose: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master).unwrap_or_else(|_| unreachable!());
    mac.update(purpose);
    mac.finalize().into_bytes().into()
}

impl MfaKey {
    pub fn from_master(master: &[u8; 32]) -> Self {
        let seal = derive(master, b"saga-account totp secret v1");
        Self {
            seal: Aes256Gcm::new(&seal.into()),
            codes: derive(master, b"saga-account recovery code v1"),
        }
    }

    /// 32 bytes in standard base64 (padding optional); `None` for anything else.
    pub fn parse_base64(text: &str) -> Option<Self> {
        let text = text.trim();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .ok()?;
        let master: [u8; 32] = bytes.try_into().ok()?;
        Some(Self::from_master(&master))
    }

    /// A fresh master key in the form `parse_base64` reads.
    pub fn generate_base64() -> String {
        base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
    }

    fn aad(customer: CustomerId) -> [u8; 13] {
        let mut aad = [0u8; 13];
        aad[0] = SEALED_V1;
        aad[1..9].copy_from_slice(&customer.0.to_be_bytes());
        aad[9..].copy_from_slice(b"totp");
        aad
    }

    /// `version || nonce || ciphertext+tag`.
    pub fn seal(&self, customer: CustomerId, secret: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let aad = Self::aad(customer);
        let sealed = self
            .seal
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret,
                    aad: &aad,
                },
            )
            // AES-GCM fails only for inputs of gigabytes.
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// The secret, or `None` when it was sealed for another customer, under another key,
    /// or changed.
    pub fn open(&self, customer: CustomerId, sealed: &[u8]) -> Option<Vec<u8>> {
        let (&version, rest) = sealed.split_first()?;
        if version != SEALED_V1 || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let aad = Self::aad(customer);
        self.seal
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .ok()
    }

    /// The stored form of a recovery code of `customer` (normalised text).
    pub fn code_digest(&self, customer: CustomerId, code: &str) -> [u8; 32] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.codes).unwrap_or_else(|_| unreachable!());
        mac.update(&customer.0.to_be_bytes());
        mac.update(code.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_customer_and_key() {
        let key = MfaKey::from_master(&[7; 32]);
        let sealed = key.seal(CustomerId(1), b"twenty bytes secret!");
        assert_eq!(
            key.open(CustomerId(1), &sealed).as_deref(),
            Some(&b"twenty bytes secret!"[..])
        );
        assert!(!sealed.windows(20).any(|w| w == b"twenty bytes secret!"));
        assert_eq!(key.open(CustomerId(2), &sealed), None);
        assert_eq!(
            MfaKey::from_master(&[8; 32]).open(CustomerId(1), &sealed),
            None
        );
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert_eq!(key.open(CustomerId(1), &flipped), None);
        // Two seals of one secret differ (a fresh nonce each).
        assert_ne!(key.seal(CustomerId(1), b"twenty bytes secret!"), sealed);
    }

    #[test]
    fn the_key_is_32_bytes_of_base64_and_never_printed() {
        let text = MfaKey::generate_base64();
        let key = MfaKey::parse_base64(&text).unwrap();
        assert_eq!(format!("{key:?}"), "MfaKey(..)");
        assert!(MfaKey::parse_base64("c2hvcnQ=").is_none());
        assert!(MfaKey::parse_base64("not base64!").is_none());
        assert_ne!(
            key.code_digest(CustomerId(1), "abcd"),
            key.code_digest(CustomerId(2), "abcd")
        );
    }
}
