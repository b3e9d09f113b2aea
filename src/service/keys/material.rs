//! Signing keys themselves: HS256 secrets, Ed25519 and P-256 key pairs; how each signs and
//! verifies a JWS, how it is named (`kid`) and how its public half is written as a JWK.
//! Private keys and secrets never print.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The algorithms tokens are signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    Hs256,
    EdDsa,
    Es256,
}

impl Alg {
    /// The JWS `alg` value.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::EdDsa => "EdDSA",
            Alg::Es256 => "ES256",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "HS256" => Some(Alg::Hs256),
            "EdDSA" => Some(Alg::EdDsa),
            "ES256" => Some(Alg::Es256),
            _ => None,
        }
    }
}

/// An HS256 secret, keyed once.
#[derive(Clone)]
pub struct HmacKey {
    pub kid: String,
    mac: Hmac<Sha256>,
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl HmacKey {
    pub fn new(secret: &[u8]) -> Self {
        // The kid names the secret without revealing anything of it: a digest under a
        // label of ours, 66 bits of it.
        let digest = Sha256::new()
            .chain_update(b"saga-account hs256 kid\0")
            .chain_update(secret)
            .finalize();
        #[expect(clippy::expect_used, reason = "HMAC takes keys of any length")]
        let mac =
            <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
        Self {
            kid: format!("hs-{}", &URL_SAFE_NO_PAD.encode(digest)[..11]),
            mac,
        }
    }

    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        let mut mac = self.mac.clone();
        mac.update(input);
        mac.finalize().into_bytes().to_vec()
    }

    /// Constant-time comparison of the signature.
    pub fn verify(&self, input: &[u8], signature: &[u8]) -> bool {
        let mut mac = self.mac.clone();
        mac.update(input);
        mac.verify_slice(signature).is_ok()
    }
}

/// Why a private key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a PKCS#8 {0} private key (PEM or DER)")]
    Unreadable(&'static str),
    #[error("cannot encode the private key: {0}")]
    Encode(String),
}

/// An Ed25519 or P-256 key pair.
#[derive(Clone)]
pub enum KeyPair {
    Ed25519(ed25519_dalek::SigningKey),
    Es256(p256::ecdsa::SigningKey),
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair({}, <private>)", self.alg().name())
    }
}

impl KeyPair {
    pub fn generate(alg: Alg) -> Option<Self> {
        match alg {
            Alg::Hs256 => None,
            Alg::EdDsa => Some(KeyPair::Ed25519(ed25519_dalek::SigningKey::from_bytes(
                &rand::random(),
            ))),
            // A random scalar is out of range about once in 2^32 draws: draw again.
            Alg::Es256 => std::iter::repeat_with(|| {
                p256::ecdsa::SigningKey::from_slice(&rand::random::<[u8; 32]>()).ok()
            })
            .flatten()
            .next()
            .map(KeyPair::Es256),
        }
    }

    pub fn alg(&self) -> Alg {
        match self {
            KeyPair::Ed25519(_) => Alg::EdDsa,
            KeyPair::Es256(_) => Alg::Es256,
        }
    }

    /// From PKCS#8, PEM or DER, of either kind.
    pub fn from_pkcs8(bytes: &[u8]) -> Result<Self, KeyError> {
        if let Ok(text) = std::str::from_utf8(bytes)
            && text.contains("-----BEGIN")
        {
            if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(text) {
                return Ok(KeyPair::Ed25519(key));
            }
            if let Ok(key) =
                <p256::ecdsa::SigningKey as p256::pkcs8::DecodePrivateKey>::from_pkcs8_pem(text)
            {
                return Ok(KeyPair::Es256(key));
            }
            return Err(KeyError::Unreadable("Ed25519 or P-256"));
        }
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_der(bytes) {
            return Ok(KeyPair::Ed25519(key));
        }
        <p256::ecdsa::SigningKey as p256::pkcs8::DecodePrivateKey>::from_pkcs8_der(bytes)
            .map(KeyPair::Es256)
            .map_err(|_| KeyError::Unreadable("Ed25519 or P-256"))
    }

    /// PKCS#8 DER, for storage.
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, KeyError> {
        let document = match self {
            KeyPair::Ed25519(key) => key.to_pkcs8_der(),
            KeyPair::Es256(key) => p256::pkcs8::EncodePrivateKey::to_pkcs8_der(key),
        };
        document
            .map(|d| d.as_bytes().to_vec())
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            KeyPair::Ed25519(key) => ed25519_dalek::Signer::sign(key, input).to_bytes().to_vec(),
            KeyPair::Es256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(input);
                // Low S only: the one spelling `verify` accepts.
                signature
                    .normalize_s()
                    .unwrap_or(signature)
                    .to_bytes()
                    .to_vec()
            }
        }
    }

    pub fn public(&self) -> PublicKey {
        match self {
            KeyPair::Ed25519(key) => PublicKey::Ed25519(key.verifying_key()),
            KeyPair::Es256(key) => PublicKey::Es256(*key.verifying_key()),
        }
    }
}

/// The public half of a key pair: what verifies, and what the JWKS publishes.
#[derive(Debug, Clone)]
pub enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    Es256(p256::ecdsa::VerifyingKey),
}

impl PublicKey {
    pub fn alg(&self) -> Alg {
        match self {
            PublicKey::Ed25519(_) => Alg::EdDsa,
            PublicKey::Es256(_) => Alg::Es256,
        }
    }

    pub fn verify(&self, input: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicKey::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|s| key.verify_strict(input, &s).is_ok()),
            // A high S (`normalize_s` answers only for one) is the mirror of a valid
            // signature: refused, so that a token has one spelling (rule 15.11).
            PublicKey::Es256(key) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| s.normalize_s().is_none() && key.verify(input, &s).is_ok()),
        }
    }

    /// The JWK members that define the key, as RFC 7638 orders them for the thumbprint.
    fn required_members(&self) -> Value {
        match self {
            PublicKey::Ed25519(key) => json!({
                "crv": "Ed25519",
                "kty": "OKP",
                "x": URL_SAFE_NO_PAD.encode(key.to_bytes()),
            }),
            PublicKey::Es256(key) => {
                let point = key.to_encoded_point(false);
                let coordinate = |c: Option<&p256::FieldBytes>| {
                    URL_SAFE_NO_PAD.encode(c.map(|c| c.as_slice()).unwrap_or_default())
                };
                json!({
                    "crv": "P-256",
                    "kty": "EC",
                    "x": coordinate(point.x()),
                    "y": coordinate(point.y()),
                })
            }
        }
    }

    /// The RFC 7638 thumbprint: the key's name, the same on every replica.
    pub fn thumbprint(&self) -> String {
        // serde_json writes object members in sorted order, as RFC 7638 requires.
        let canonical = self.required_members().to_string();
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// The RFC 7517 JWK, with `kid`, `alg` and `use`.
    pub fn jwk(&self) -> Value {
        let mut jwk = self.required_members();
        if let Value::Object(members) = &mut jwk {
            members.insert("kid".into(), self.thumbprint().into());
            members.insert("alg".into(), self.alg().name().into());
            members.insert("use".into(), "sig".into());
        }
        jwk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_pairs_sign_verify_and_round_trip_through_pkcs8() {
        for alg in [Alg::EdDsa, Alg::Es256] {
            let pair = KeyPair::generate(alg).unwrap();
            let signature = pair.sign(b"input");
            assert_eq!(signature.len(), 64, "{alg:?}: raw signature");
            assert!(pair.public().verify(b"input", &signature));
            assert!(!pair.public().verify(b"other", &signature));
            let restored = KeyPair::from_pkcs8(&pair.to_pkcs8_der().unwrap()).unwrap();
            assert_eq!(restored.public().thumbprint(), pair.public().thumbprint());
            assert!(!format!("{pair:?}").contains(&format!("{:?}", pair.to_pkcs8_der().unwrap())));
        }
    }

    /// RFC 8037 appendix A.3: the thumbprint of its Ed25519 example key.
    #[test]
    fn ed25519_thumbprint_matches_rfc_8037() {
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        let key = ed25519_dalek::VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
        assert_eq!(
            PublicKey::Ed25519(key).thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn hmac_kids_name_the_secret_without_revealing_it() {
        let a = HmacKey::new(b"secret-a");
        assert_eq!(a.kid, HmacKey::new(b"secret-a").kid);
        assert_ne!(a.kid, HmacKey::new(b"secret-b").kid);
        assert!(a.kid.starts_with("hs-") && a.kid.len() == 14);
        assert!(!format!("{a:?}").contains("secret"));
        assert!(a.verify(b"x", &a.sign(b"x")));
        assert!(!a.verify(b"y", &a.sign(b"x")));
    }
}
