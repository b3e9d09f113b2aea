//! JWTs with the Go service's claim layout (SPEC section 3):
//! `{"CustomerID": u64, "Refresh": bool, "exp": unix seconds}`, plus, for tokens of a
//! session (SPEC section 9), `"iat"`, `"sid"` and, on refresh tokens, `"jti"`; no others.
//! The Go service ignores claims it does not know. Signed and verified by the key ring
//! (HS256, EdDSA or ES256; SPEC section 11).
//!
//! Hand-written rather than a general JWT library: the format is fixed, this is the hottest
//! path of the shop, and every rejection rule has to be exactly the contract's. The tests
//! check it against the `jsonwebtoken` crate.

use std::sync::Arc;

use base64::Engine;
use quick_cache::sync::Cache;
use serde::Deserialize;

use crate::{
    domain::{CustomerId, RandomId, SessionId, TokenId},
    metrics::Metrics,
    service::keys::{Alg, B64, KeyRing},
};

/// Far above any real token; bounds the work an oversized header can cause.
const MAX_TOKEN_LEN: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

/// Why a token was refused. `Expired` is only ever reported for a correctly signed token,
/// `Revoked` (decided by the session service, never by the codec) for a valid one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("invalid token")]
    Invalid,
    #[error("token expired")]
    Expired,
    #[error("token revoked")]
    Revoked,
}

impl TokenError {
    /// A short, fixed name for metrics labels.
    pub fn label(&self) -> &'static str {
        match self {
            TokenError::Invalid => "invalid",
            TokenError::Expired => "expired",
            TokenError::Revoked => "revoked",
        }
    }
}

impl From<TokenError> for crate::domain::Error {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Invalid => crate::domain::Error::TokenInvalid,
            TokenError::Expired => crate::domain::Error::TokenExpired,
            TokenError::Revoked => crate::domain::Error::TokenRevoked,
        }
    }
}

/// What a token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    pub customer: CustomerId,
    pub kind: TokenKind,
    pub exp: i64,
    pub iat: Option<i64>,
    /// The session; absent in tokens minted by the Go service.
    pub sid: Option<SessionId>,
    /// A refresh token's own id; absent in access tokens and Go-minted tokens.
    pub jti: Option<TokenId>,
}

impl Claims {
    /// A token as the Go service mints it: no session.
    pub fn legacy(customer: CustomerId, kind: TokenKind, exp: i64) -> Self {
        Self {
            customer,
            kind,
            exp,
            iat: None,
            sid: None,
            jti: None,
        }
    }
}

#[derive(Deserialize)]
struct RawClaims<'a> {
    #[serde(rename = "CustomerID")]
    customer_id: u64,
    #[serde(rename = "Refresh")]
    refresh: bool,
    // Required: the Go service treated a token without `exp` as never expiring (SPEC "Fix:").
    exp: i64,
    // Checked when present, as jwt-go v3 does.
    nbf: Option<i64>,
    iat: Option<i64>,
    #[serde(borrow, default)]
    sid: Option<&'a str>,
    #[serde(borrow, default)]
    jti: Option<&'a str>,
}

/// Verified asymmetric tokens kept: a token is presented many times, and an Ed25519 or
/// P-256 verification costs about a hundred HMACs.
const VERIFIED_CACHE_ENTRIES: usize = 100_000;

/// What a verified token said, before the checks that depend on the moment.
#[derive(Debug, Clone, Copy)]
struct Verified {
    claims: Claims,
    nbf: Option<i64>,
    /// `RingState::public_set` of the ring that verified it.
    keys: u64,
}

/// Signs and verifies tokens with the key ring. Cheap to clone.
#[derive(Clone)]
pub struct TokenCodec {
    ring: KeyRing,
    /// Keyed by the whole token, filled only after a verification succeeded, so that no
    /// token is trusted that was not verified; consulted only while asymmetric keys exist.
    verified: Arc<Cache<Box<str>, Verified>>,
    metrics: Option<Metrics>,
}

impl TokenCodec {
    /// A codec that signs and verifies with one HS256 secret (tests, tools).
    pub fn new(secret: &[u8]) -> Self {
        Self::with_ring(KeyRing::hs256(secret), None)
    }

    pub fn with_ring(ring: KeyRing, metrics: Option<Metrics>) -> Self {
        Self {
            ring,
            verified: Arc::new(Cache::new(VERIFIED_CACHE_ENTRIES)),
            metrics,
        }
    }

    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }

    /// A token with `claims`, in the Go service's layout (extra claims after its three),
    /// signed by the ring's current key, which its `kid` header names.
    pub fn mint(&self, claims: &Claims) -> String {
        use std::fmt::Write as _;
        let mut payload = String::with_capacity(160);
        let _ = write!(
            payload,
            r#"{{"CustomerID":{},"Refresh":{},"exp":{}"#,
            claims.customer.0,
            claims.kind == TokenKind::Refresh,
            claims.exp
        );
        if let Some(iat) = claims.iat {
            let _ = write!(payload, r#","iat":{iat}"#);
        }
        if let Some(sid) = claims.sid {
            let _ = write!(payload, r#","sid":"{sid}""#);
        }
        if let Some(jti) = claims.jti {
            let _ = write!(payload, r#","jti":"{jti}""#);
        }
        payload.push('}');
        self.ring.load().sign(&B64.encode(payload))
    }

    fn count_cache(&self, result: &str) {
        if let Some(metrics) = &self.metrics {
            metrics.token_cache.with_label_values(&[result]).inc();
        }
    }

    /// Verifies a token of the expected kind at `now` (unix seconds). No leeway: a token is
    /// expired once `now > exp`, as in jwt-go.
    pub fn verify(&self, token: &str, expected: TokenKind, now: i64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid);
        }
        let ring = self.ring.load();
        let cached = ring.has_public_keys();
        if cached {
            if let Some(verified) = self.verified.get(token)
                && verified.keys == ring.public_set()
            {
                self.count_cache("hit");
                return judge(verified, expected, now);
            }
            self.count_cache("miss");
        }
        let (payload, alg) = ring.verify(token).ok_or(TokenError::Invalid)?;
        let mut verified = parse_claims(payload)?;
        if cached && alg != Alg::Hs256 {
            verified.keys = ring.public_set();
            self.verified.insert(token.into(), verified);
        }
        judge(verified, expected, now)
    }
}

/// The claims of a verified payload.
fn parse_claims(payload: &str) -> Result<Verified, TokenError> {
    let payload = B64.decode(payload).map_err(|_| TokenError::Invalid)?;
    let raw: RawClaims<'_> = serde_json::from_slice(&payload).map_err(|_| TokenError::Invalid)?;
    // A session id we did not write makes the token invalid, not sessionless.
    let id = |text: Option<&str>| match text {
        None => Ok(None),
        Some(text) => RandomId::parse(text).map(Some).ok_or(TokenError::Invalid),
    };
    let (sid, jti) = (id(raw.sid)?, id(raw.jti)?);
    Ok(Verified {
        claims: Claims {
            customer: CustomerId(raw.customer_id),
            kind: if raw.refresh {
                TokenKind::Refresh
            } else {
                TokenKind::Access
            },
            exp: raw.exp,
            iat: raw.iat,
            sid,
            jti,
        },
        nbf: raw.nbf,
        keys: 0,
    })
}

/// The checks that depend on what is expected and when.
fn judge(verified: Verified, expected: TokenKind, now: i64) -> Result<Claims, TokenError> {
    let claims = verified.claims;
    if claims.kind != expected {
        return Err(TokenError::Invalid);
    }
    if verified.nbf.is_some_and(|nbf| now < nbf) || claims.iat.is_some_and(|iat| now < iat) {
        return Err(TokenError::Invalid);
    }
    if now > claims.exp {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn codec() -> TokenCodec {
        TokenCodec::new(b"93c61a11-a4f6-42fc-a995-4f1c850822bb")
    }

    fn sign_raw(header: &str, payload: &str, secret: &[u8]) -> String {
        let mut token = format!("{}.{}", B64.encode(header), B64.encode(payload));
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap();
        mac.update(token.as_bytes());
        token.push('.');
        token.push_str(&B64.encode(mac.finalize().into_bytes()));
        token
    }

    #[test]
    fn session_claims_round_trip_and_stay_after_the_go_ones() {
        let c = codec();
        let claims = Claims {
            customer: CustomerId(9),
            kind: TokenKind::Refresh,
            exp: NOW + 10,
            iat: Some(NOW),
            sid: Some(RandomId::random()),
            jti: Some(RandomId::random()),
        };
        let token = c.mint(&claims);
        assert_eq!(c.verify(&token, TokenKind::Refresh, NOW), Ok(claims));
        let payload =
            String::from_utf8(B64.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
        assert!(
            payload.starts_with(r#"{"CustomerID":9,"Refresh":true,"exp":"#),
            "{payload}"
        );
        // A session id that is not one of ours makes the token invalid.
        let forged = sign_raw(
            r#"{"alg":"HS256","typ":"JWT"}"#,
            &format!(
                r#"{{"CustomerID":9,"Refresh":false,"exp":{},"sid":"short"}}"#,
                NOW + 10
            ),
            b"93c61a11-a4f6-42fc-a995-4f1c850822bb",
        );
        assert_eq!(
            c.verify(&forged, TokenKind::Access, NOW),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn minted_tokens_verify_as_their_kind_only() {
        let c = codec();
        let access = c.mint(&Claims::legacy(CustomerId(42), TokenKind::Access, NOW + 10));
        let refresh = c.mint(&Claims::legacy(
            CustomerId(42),
            TokenKind::Refresh,
            NOW + 10,
        ));
        assert_eq!(
            c.verify(&access, TokenKind::Access, NOW)
                .map(|c| c.customer),
            Ok(CustomerId(42))
        );
        assert_eq!(
            c.verify(&refresh, TokenKind::Refresh, NOW)
                .map(|c| c.customer),
            Ok(CustomerId(42))
        );
        assert_eq!(
            c.verify(&access, TokenKind::Refresh, NOW)
                .map(|c| c.customer),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            c.verify(&refresh, TokenKind::Access, NOW)
                .map(|c| c.customer),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn payload_has_the_go_layout() {
        let token = codec().mint(&Claims::legacy(CustomerId(7), TokenKind::Refresh, 123));
        let payload = token.split('.').nth(1).unwrap();
        assert_eq!(
            B64.decode(payload).unwrap(),
            br#"{"CustomerID":7,"Refresh":true,"exp":123}"#
        );
    }

    /// A token exactly as jwt-go v3 signs it for this secret (header and claims by hand).
    #[test]
    fn go_minted_token_verifies() {
        let secret = b"93c61a11-a4f6-42fc-a995-4f1c850822bb";
        let token = sign_raw(
            r#"{"alg":"HS256","typ":"JWT"}"#,
            &format!(
                r#"{{"CustomerID":1234567890123,"Refresh":false,"exp":{}}}"#,
                NOW + 300
            ),
            secret,
        );
        assert_eq!(
            codec()
                .verify(&token, TokenKind::Access, NOW)
                .map(|c| c.customer),
            Ok(CustomerId(1234567890123))
        );
        // Ours differ only in the header, which names the key.
        let ours = codec().mint(&Claims::legacy(
            CustomerId(1234567890123),
            TokenKind::Access,
            NOW + 300,
        ));
        assert_eq!(ours.split('.').nth(1), token.split('.').nth(1));
        let header = B64.decode(ours.split('.').next().unwrap()).unwrap();
        let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
        assert_eq!(header["alg"], "HS256");
        assert!(header["kid"].as_str().unwrap().starts_with("hs-"));
    }

    #[test]
    fn expiry_has_no_leeway() {
        let c = codec();
        let token = c.mint(&Claims::legacy(CustomerId(1), TokenKind::Access, NOW));
        assert_eq!(
            c.verify(&token, TokenKind::Access, NOW).map(|c| c.customer),
            Ok(CustomerId(1))
        );
        assert_eq!(
            c.verify(&token, TokenKind::Access, NOW + 1)
                .map(|c| c.customer),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn expired_is_reported_only_with_a_valid_signature() {
        let token = TokenCodec::new(b"other").mint(&Claims::legacy(
            CustomerId(1),
            TokenKind::Access,
            NOW - 100,
        ));
        assert_eq!(
            codec()
                .verify(&token, TokenKind::Access, NOW)
                .map(|c| c.customer),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn rejects_other_algorithms_and_missing_claims() {
        let secret = b"93c61a11-a4f6-42fc-a995-4f1c850822bb";
        let claims = format!(r#"{{"CustomerID":1,"Refresh":false,"exp":{}}}"#, NOW + 10);
        let c = codec();
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"HS512","typ":"JWT"}"#,
            r#"{"typ":"JWT"}"#,
        ] {
            assert_eq!(
                c.verify(&sign_raw(header, &claims, secret), TokenKind::Access, NOW)
                    .map(|c| c.customer),
                Err(TokenError::Invalid),
                "{header}"
            );
        }
        let none = format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none"}"#),
            B64.encode(&claims)
        );
        assert_eq!(
            c.verify(&none, TokenKind::Access, NOW).map(|c| c.customer),
            Err(TokenError::Invalid)
        );
        let reordered = sign_raw(r#"{"typ":"JWT","alg":"HS256"}"#, &claims, secret);
        assert_eq!(
            c.verify(&reordered, TokenKind::Access, NOW)
                .map(|c| c.customer),
            Ok(CustomerId(1))
        );
        for payload in [
            r#"{"CustomerID":1,"Refresh":false}"#.to_string(),
            format!(r#"{{"CustomerID":"1","Refresh":false,"exp":{}}}"#, NOW + 10),
            format!(r#"{{"CustomerID":1,"Refresh":false,"exp":{}.5}}"#, NOW + 10),
            format!(
                r#"{{"CustomerID":1,"Refresh":false,"exp":{},"nbf":{}}}"#,
                NOW + 10,
                NOW + 5
            ),
            "not json".to_string(),
        ] {
            let token = sign_raw(r#"{"alg":"HS256","typ":"JWT"}"#, &payload, secret);
            assert_eq!(
                c.verify(&token, TokenKind::Access, NOW).map(|c| c.customer),
                Err(TokenError::Invalid),
                "{payload}"
            );
        }
    }

    #[test]
    fn rejects_malformed_tokens() {
        let c = codec();
        let good = c.mint(&Claims::legacy(CustomerId(1), TokenKind::Access, NOW + 10));
        let mut tampered = good.clone();
        tampered.pop();
        tampered.push(if good.ends_with('A') { 'B' } else { 'A' });
        for bad in [
            "",
            "a",
            "a.b",
            "a.b.c",
            "a.b.c.d",
            &format!("{good}.x"),
            &tampered,
            &"x".repeat(10_000),
        ] {
            assert_eq!(
                c.verify(bad, TokenKind::Access, NOW).map(|c| c.customer),
                Err(TokenError::Invalid),
                "{bad}"
            );
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;
        use crate::service::keys::{HmacKey, KeyPair, Published, RingState, Signer};

        /// A ring of each shape the service runs with: HS256 alone, and an asymmetric signer
        /// with (or without) HS256 secrets still accepted.
        fn rings() -> Vec<(&'static str, TokenCodec)> {
            let pair = |alg| {
                let pair = KeyPair::generate(alg).unwrap();
                let kid = pair.public().thumbprint();
                let published = vec![Published {
                    kid: kid.clone(),
                    key: pair.public(),
                }];
                (Signer::Pair { kid, pair }, published)
            };
            let hmac = HmacKey::new(b"93c61a11-a4f6-42fc-a995-4f1c850822bb");
            let (ed, ed_public) = pair(Alg::EdDsa);
            let (es, es_public) = pair(Alg::Es256);
            vec![
                ("HS256", codec()),
                (
                    "EdDSA",
                    TokenCodec::with_ring(
                        KeyRing::new(RingState::new(ed, vec![hmac], ed_public)),
                        None,
                    ),
                ),
                (
                    "ES256",
                    TokenCodec::with_ring(
                        KeyRing::new(RingState::new(es, vec![], es_public)),
                        None,
                    ),
                ),
            ]
        }

        fn random_id() -> impl Strategy<Value = RandomId> {
            any::<[u8; 16]>().prop_map(|b| RandomId::from_bytes(&b).unwrap())
        }

        /// Claims valid at `NOW`: any customer and kind, an expiry not before now, an issue
        /// time not after it, and any mix of the session claims.
        fn claims() -> impl Strategy<Value = Claims> {
            (
                any::<u64>(),
                any::<bool>(),
                NOW..=i64::MAX,
                proptest::option::of(i64::MIN..=NOW),
                proptest::option::of(random_id()),
                proptest::option::of(random_id()),
            )
                .prop_map(|(customer, refresh, exp, iat, sid, jti)| Claims {
                    customer: CustomerId(customer),
                    kind: if refresh {
                        TokenKind::Refresh
                    } else {
                        TokenKind::Access
                    },
                    exp,
                    iat,
                    sid,
                    jti,
                })
        }

        /// Strings shaped like tokens: up to four dot-separated segments of base64 of junk,
        /// or of JSON headers naming our algorithms.
        fn token_like() -> impl Strategy<Value = String> {
            let segment = prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..80).prop_map(|b| B64.encode(b)),
                "[A-Za-z0-9_=+/-]{0,90}",
                prop_oneof![
                    Just(r#"{"alg":"HS256","typ":"JWT"}"#),
                    Just(r#"{"alg":"EdDSA","typ":"JWT"}"#),
                    Just(r#"{"alg":"ES256","kid":"x","typ":"JWT"}"#),
                    Just(r#"{"alg":"none"}"#),
                    Just(r#"{"CustomerID":1,"Refresh":false,"exp":9999999999}"#),
                ]
                .prop_map(|json| B64.encode(json)),
            ];
            proptest::collection::vec(segment, 0..5).prop_map(|parts| parts.join("."))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Anything that was not signed by the ring is invalid: never accepted, never
            /// "expired" (which would tell a forger the signature passed), never a panic.
            #[test]
            fn unsigned_input_is_invalid(
                bytes in proptest::collection::vec(any::<u8>(), 0..600),
                shaped in token_like(),
                now in any::<i64>(),
                refresh in any::<bool>(),
            ) {
                let kind = if refresh { TokenKind::Refresh } else { TokenKind::Access };
                let text = String::from_utf8_lossy(&bytes);
                for (name, codec) in rings() {
                    for junk in [&*text, &shaped] {
                        prop_assert_eq!(
                            codec.verify(junk, kind, now), Err(TokenError::Invalid), "{} {:?}", name, junk
                        );
                    }
                }
            }

            /// Mint then verify gives the claims back, on every ring; the other kind is
            /// invalid and one second past the expiry is expired.
            #[test]
            fn mint_then_verify_is_the_identity(claims in claims()) {
                let other = match claims.kind {
                    TokenKind::Access => TokenKind::Refresh,
                    TokenKind::Refresh => TokenKind::Access,
                };
                for (name, codec) in rings() {
                    let token = codec.mint(&claims);
                    prop_assert_eq!(codec.verify(&token, claims.kind, NOW), Ok(claims), "{}", name);
                    // Twice: the second answer may come from the verified-token cache.
                    prop_assert_eq!(codec.verify(&token, claims.kind, NOW), Ok(claims), "{}", name);
                    prop_assert_eq!(codec.verify(&token, other, NOW), Err(TokenError::Invalid), "{}", name);
                    if let Some(after) = claims.exp.checked_add(1) {
                        prop_assert_eq!(
                            codec.verify(&token, claims.kind, after), Err(TokenError::Expired), "{}", name
                        );
                    }
                }
            }

            /// One character of a real token changed, anywhere: invalid.
            #[test]
            fn tampered_tokens_are_invalid(claims in claims(), at in any::<prop::sample::Index>(), with in "[A-Za-z0-9_.=-]") {
                for (name, codec) in rings() {
                    let token = codec.mint(&claims);
                    let i = at.index(token.len());
                    if token[i..].starts_with(&with) {
                        continue;
                    }
                    let tampered = format!("{}{}{}", &token[..i], with, &token[i + 1..]);
                    prop_assert_eq!(
                        codec.verify(&tampered, claims.kind, NOW), Err(TokenError::Invalid), "{} {}", name, tampered
                    );
                }
            }
        }
    }
}
