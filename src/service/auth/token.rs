//! JWTs with the Go service's claim layout (SPEC section 3):
//! `{"CustomerID": u64, "Refresh": bool, "exp": unix seconds}`, plus, for tokens of a
//! session (SPEC section 9), `"iat"`, `"sid"` and, on refresh tokens, `"jti"`; after a
//! second factor or a passkey, `"amr"` (section 16); no others.
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
    domain::{Amr, Claims, CustomerId, Method, RandomId, TokenError, TokenKind},
    metrics::Metrics,
    service::keys::{Alg, B64, KeyRing},
};

/// Far above any real token; bounds the work an oversized header can cause.
const MAX_TOKEN_LEN: usize = 4096;

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
    #[serde(borrow, default)]
    amr: Option<Vec<&'a str>>,
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
        if !claims.amr.is_empty() {
            payload.push_str(r#","amr":["#);
            for (i, name) in claims.amr.names().enumerate() {
                let comma = if i == 0 { "" } else { "," };
                let _ = write!(payload, r#"{comma}"{name}""#);
            }
            payload.push(']');
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
    // Likewise a method we do not name.
    let methods = raw
        .amr
        .unwrap_or_default()
        .into_iter()
        .map(|name| Method::parse(name).ok_or(TokenError::Invalid))
        .collect::<Result<Vec<_>, _>>()?;
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
            amr: Amr::of(&methods),
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
mod tests;
