//! The key ring (SPEC section 11): the key that signs new tokens, and every key a token may
//! be verified with (the current HS256 secret and `JWT_PREVIOUS_SECRETS`, the published
//! Ed25519 or P-256 keys). `auth::token` signs and verifies through it; the HTTP layer
//! renders its public keys as the JWKS; `rotation` keeps it current from the database.
//!
//! A token names its key with the `kid` header. Tokens minted by the Go service have none:
//! they are tried against every accepted HS256 secret. A header that tries to bring its own
//! key (`jwk`, `jku`, `x5u`, `x5c`) or names no key we have is refused.

mod material;
mod rotation;

use std::{borrow::Cow, sync::Arc};

use arc_swap::ArcSwap;
use base64::{
    Engine,
    alphabet::URL_SAFE,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use serde::Deserialize;
use serde_json::{Value, json};

pub use material::{Alg, HmacKey, KeyError, KeyPair, PublicKey};
pub use rotation::{KeyManager, KeySettings, KeySource, SigningSettings};

/// Unpadded on output, as jwt-go writes; padding tolerated on input, as jwt-go reads.
pub const B64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// `{"alg":"HS256","typ":"JWT"}`, the header jwt-go writes: no `kid`.
const GO_HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// A key that verifies, and is published when it is public.
#[derive(Debug, Clone)]
pub struct Published {
    pub kid: String,
    pub key: PublicKey,
}

/// What signs new tokens.
#[derive(Debug, Clone)]
pub enum Signer {
    Hmac(HmacKey),
    Pair { kid: String, pair: KeyPair },
}

impl Signer {
    fn kid(&self) -> &str {
        match self {
            Signer::Hmac(key) => &key.kid,
            Signer::Pair { kid, .. } => kid,
        }
    }

    fn alg(&self) -> Alg {
        match self {
            Signer::Hmac(_) => Alg::Hs256,
            Signer::Pair { pair, .. } => pair.alg(),
        }
    }
}

/// Which key a header names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyRef {
    Hmac(usize),
    /// No `kid` (a Go-minted HS256 token): any accepted secret.
    AnyHmac,
    Public(usize),
}

/// One state of the ring; replaced whole when keys change.
#[derive(Debug)]
pub struct RingState {
    signer: Signer,
    /// The signer's header, encoded.
    signer_header: String,
    /// Accepted HS256 secrets, the signing one first (empty with `JWT_ACCEPT_HS256=false`).
    hmac: Vec<HmacKey>,
    /// Published public keys: verifying, and in the JWKS.
    public: Vec<Published>,
    /// Encoded headers this ring writes, to skip parsing them on the hot path.
    headers: Vec<(String, KeyRef)>,
    /// Names the set of published keys: verifications remembered under another set are
    /// not trusted (a key may have been withdrawn since).
    public_set: u64,
}

fn encoded_header(alg: Alg, kid: &str) -> String {
    B64.encode(format!(
        r#"{{"alg":"{}","kid":"{kid}","typ":"JWT"}}"#,
        alg.name()
    ))
}

impl RingState {
    pub fn new(signer: Signer, hmac: Vec<HmacKey>, public: Vec<Published>) -> Self {
        let mut headers = Vec::new();
        for (i, key) in hmac.iter().enumerate() {
            headers.push((encoded_header(Alg::Hs256, &key.kid), KeyRef::Hmac(i)));
        }
        if !hmac.is_empty() {
            headers.push((GO_HEADER_B64.to_owned(), KeyRef::AnyHmac));
        }
        for (i, key) in public.iter().enumerate() {
            headers.push((encoded_header(key.key.alg(), &key.kid), KeyRef::Public(i)));
        }
        let public_set = {
            use std::hash::Hasher;
            // Fixed keys: rings built from the same keys must agree.
            let mut hasher = std::hash::DefaultHasher::new();
            for key in &public {
                hasher.write(key.kid.as_bytes());
                hasher.write_u8(0);
            }
            hasher.finish()
        };
        Self {
            public_set,
            signer_header: encoded_header(signer.alg(), signer.kid()),
            signer,
            hmac,
            public,
            headers,
        }
    }

    pub fn signer_alg(&self) -> Alg {
        self.signer.alg()
    }

    pub fn signer_kid(&self) -> &str {
        self.signer.kid()
    }

    /// Whether any key is asymmetric (worth caching verifications for).
    pub fn has_public_keys(&self) -> bool {
        !self.public.is_empty()
    }

    /// Equal for two rings only when they publish the same keys.
    pub fn public_set(&self) -> u64 {
        self.public_set
    }

    pub fn published(&self) -> &[Published] {
        &self.public
    }

    /// The key a header names; `None` for anything we do not accept.
    fn key_of(&self, header: &str) -> Option<KeyRef> {
        if let Some((_, key)) = self.headers.iter().find(|(h, _)| h == header) {
            return Some(*key);
        }
        #[derive(Deserialize)]
        struct Header<'a> {
            #[serde(borrow)]
            alg: Cow<'a, str>,
            #[serde(borrow, default)]
            kid: Option<Cow<'a, str>>,
            // A token may not bring its own key, nor demand what we do not know.
            jwk: Option<serde::de::IgnoredAny>,
            jku: Option<serde::de::IgnoredAny>,
            x5u: Option<serde::de::IgnoredAny>,
            x5c: Option<serde::de::IgnoredAny>,
            crit: Option<serde::de::IgnoredAny>,
        }
        let json = B64.decode(header).ok()?;
        let header: Header<'_> = serde_json::from_slice(&json).ok()?;
        if header.jwk.is_some()
            || header.jku.is_some()
            || header.x5u.is_some()
            || header.x5c.is_some()
            || header.crit.is_some()
        {
            return None;
        }
        let alg = Alg::parse(&header.alg)?;
        match (alg, header.kid) {
            (Alg::Hs256, None) if !self.hmac.is_empty() => Some(KeyRef::AnyHmac),
            (Alg::Hs256, Some(kid)) => self
                .hmac
                .iter()
                .position(|k| k.kid == kid)
                .map(KeyRef::Hmac),
            (_, Some(kid)) => self
                .public
                .iter()
                .position(|k| k.kid == kid && k.key.alg() == alg)
                .map(KeyRef::Public),
            _ => None,
        }
    }

    /// Checks a token's header and signature; returns its payload segment and the
    /// algorithm that verified it.
    pub fn verify<'t>(&self, token: &'t str) -> Option<(&'t str, Alg)> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let key = self.key_of(header)?;
        let mut raw = [0u8; 64];
        let length = B64.decode_slice(signature, &mut raw).ok()?;
        let signature = &raw[..length];
        let input = &token.as_bytes()[..header.len() + 1 + payload.len()];
        let alg = match key {
            KeyRef::Hmac(i) => self.hmac[i].verify(input, signature).then_some(Alg::Hs256),
            KeyRef::AnyHmac => self
                .hmac
                .iter()
                .any(|k| k.verify(input, signature))
                .then_some(Alg::Hs256),
            KeyRef::Public(i) => {
                let key = &self.public[i].key;
                key.verify(input, signature).then(|| key.alg())
            }
        }?;
        Some((payload, alg))
    }

    /// A whole token for an encoded payload, signed by the signer.
    pub fn sign(&self, payload_b64: &str) -> String {
        let mut token = String::with_capacity(self.signer_header.len() + payload_b64.len() + 90);
        token.push_str(&self.signer_header);
        token.push('.');
        token.push_str(payload_b64);
        let signature = match &self.signer {
            Signer::Hmac(key) => key.sign(token.as_bytes()),
            Signer::Pair { pair, .. } => pair.sign(token.as_bytes()),
        };
        token.push('.');
        B64.encode_string(signature, &mut token);
        token
    }

    /// The JWKS: every published public key (none with HS256 alone).
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.public.iter().map(|p| p.key.jwk()).collect::<Vec<_>>() })
    }
}

/// The current ring, swapped whole when keys change; reading it costs an atomic load.
#[derive(Clone)]
pub struct KeyRing(Arc<ArcSwap<RingState>>);

impl KeyRing {
    pub fn new(state: RingState) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(state)))
    }

    /// A ring that signs and verifies with one HS256 secret (tests, tools).
    pub fn hs256(secret: &[u8]) -> Self {
        let key = HmacKey::new(secret);
        Self::new(RingState::new(
            Signer::Hmac(key.clone()),
            vec![key],
            Vec::new(),
        ))
    }

    pub fn load(&self) -> arc_swap::Guard<Arc<RingState>> {
        self.0.load()
    }

    pub fn replace(&self, state: RingState) {
        self.0.store(Arc::new(state));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair_ring(alg: Alg) -> (RingState, KeyPair) {
        let pair = KeyPair::generate(alg).unwrap();
        let kid = pair.public().thumbprint();
        let public = vec![Published {
            kid: kid.clone(),
            key: pair.public(),
        }];
        (
            RingState::new(
                Signer::Pair {
                    kid,
                    pair: pair.clone(),
                },
                vec![HmacKey::new(b"secret")],
                public,
            ),
            pair,
        )
    }

    #[test]
    fn a_ring_verifies_what_it_signs_and_nothing_else() {
        for alg in [Alg::EdDsa, Alg::Es256] {
            let (ring, _) = pair_ring(alg);
            let payload = B64.encode(r#"{"CustomerID":1,"Refresh":false,"exp":1}"#);
            let token = ring.sign(&payload);
            assert_eq!(ring.verify(&token), Some((payload.as_str(), alg)));
            let mut tampered = token.clone();
            tampered.replace_range(token.len() - 2.., "AA");
            assert_eq!(ring.verify(&tampered), None);
            let (other, _) = pair_ring(alg);
            assert_eq!(
                other.verify(&token),
                None,
                "{alg:?}: a kid this ring does not have"
            );
        }
    }

    #[test]
    fn headers_that_bring_their_own_key_or_none_are_refused() {
        let (ring, pair) = pair_ring(Alg::EdDsa);
        let payload = B64.encode(r#"{"CustomerID":1,"Refresh":false,"exp":1}"#);
        let kid = pair.public().thumbprint();
        let signed_with = |header: &str, key: &dyn Fn(&[u8]) -> Vec<u8>| {
            let input = format!("{}.{payload}", B64.encode(header));
            format!("{input}.{}", B64.encode(key(input.as_bytes())))
        };
        let with_pair = |input: &[u8]| pair.sign(input);
        // The same key, but the header also carries a JWK: refused.
        let jwk = pair.public().jwk();
        let header = format!(r#"{{"alg":"EdDSA","kid":"{kid}","jwk":{jwk}}}"#);
        assert_eq!(ring.verify(&signed_with(&header, &with_pair)), None);
        // No kid on an asymmetric token, an unknown kid, alg none, an HS256 token signed
        // with the public key as its secret.
        assert_eq!(
            ring.verify(&signed_with(r#"{"alg":"EdDSA"}"#, &with_pair)),
            None
        );
        assert_eq!(
            ring.verify(&signed_with(r#"{"alg":"EdDSA","kid":"nope"}"#, &with_pair)),
            None
        );
        let none = format!("{}.{payload}.", B64.encode(r#"{"alg":"none"}"#));
        assert_eq!(ring.verify(&none), None);
        let public_as_secret = HmacKey::new(pair.public().jwk()["x"].as_str().unwrap().as_bytes());
        let confused = signed_with(r#"{"alg":"HS256","typ":"JWT"}"#, &|i| {
            public_as_secret.sign(i)
        });
        assert_eq!(ring.verify(&confused), None);
        // A kid that names an HS256 secret with another alg.
        let hmac_kid = HmacKey::new(b"secret").kid;
        let header = format!(r#"{{"alg":"EdDSA","kid":"{hmac_kid}"}}"#);
        assert_eq!(ring.verify(&signed_with(&header, &with_pair)), None);
        // A Go-style header with the accepted secret still verifies.
        let go = signed_with(r#"{"alg":"HS256","typ":"JWT"}"#, &|i| {
            HmacKey::new(b"secret").sign(i)
        });
        assert_eq!(ring.verify(&go).map(|(_, alg)| alg), Some(Alg::Hs256));
    }
}
