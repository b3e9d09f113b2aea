//! The codec against hand-made tokens, the Go service's layout and `jsonwebtoken`.

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
        sid: Some(RandomId::new(rand::random())),
        jti: Some(RandomId::new(rand::random())),
        amr: Amr::of(&[Method::Password, Method::Otp]),
    };
    let token = c.mint(&claims);
    assert_eq!(c.verify(&token, TokenKind::Refresh, NOW), Ok(claims));
    let payload = String::from_utf8(B64.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert!(
        payload.starts_with(r#"{"CustomerID":9,"Refresh":true,"exp":"#),
        "{payload}"
    );
    assert!(payload.ends_with(r#","amr":["pwd","otp"]}"#), "{payload}");
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
                TokenCodec::with_ring(KeyRing::new(RingState::new(es, vec![], es_public)), None),
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
            any::<u8>(),
        )
            .prop_map(|(customer, refresh, exp, iat, sid, jti, amr)| Claims {
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
                amr: Amr::from_bits(i16::from(amr)),
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
