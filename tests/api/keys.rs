//! Signing keys (SPEC section 11): tokens of every algorithm checked by an independent
//! implementation (`jsonwebtoken`) against the JWKS we serve, previous HS256 secrets, a key
//! file, rotation on two replicas sharing a database with injected time, a fleet moving
//! from HS256 to EdDSA, and every kind of `alg` confusion refused over HTTP and gRPC.

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use saga_account::{
    domain::Secret,
    domain::clock::ManualClock,
    service::auth::{Claims, TokenCodec, TokenKind},
    service::keys::{Alg, HmacKey, KeyPair},
    transport::grpc::pb::AuthPayload,
};
use serde_json::{Value, json};

use crate::{backend_tests, helpers::*};

backend_tests!(
    rotation_on_two_replicas_publishes_one_key_and_retires_the_old_one,
    a_fleet_moves_from_hs256_to_eddsa_without_a_refused_token,
);

#[derive(serde::Deserialize)]
struct GoClaims {
    #[serde(rename = "CustomerID")]
    customer_id: u64,
    #[serde(rename = "Refresh")]
    refresh: bool,
}

fn header_of(token: &str) -> Value {
    let segment = token.split('.').next().unwrap();
    serde_json::from_slice(&B64.decode(segment).unwrap()).unwrap()
}

fn kid_of(token: &str) -> String {
    header_of(token)["kid"].as_str().unwrap().to_owned()
}

async fn jwks(app: &TestApp) -> (JwkSet, reqwest::header::HeaderMap) {
    let response = app
        .client
        .get(format!("{}/.well-known/jwks.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    (response.json().await.unwrap(), headers)
}

async fn published_kids(app: &TestApp) -> Vec<String> {
    let mut kids: Vec<String> = jwks(app)
        .await
        .0
        .keys
        .into_iter()
        .filter_map(|k| k.common.key_id)
        .collect();
    kids.sort();
    kids
}

/// Checks `token` as a gateway would: with `jsonwebtoken` and the key of the JWKS its
/// `kid` names.
async fn verify_at_the_edge(app: &TestApp, token: &str) -> GoClaims {
    let kid = kid_of(token);
    let set = jwks(app).await.0;
    let jwk = set
        .find(&kid)
        .unwrap_or_else(|| panic!("{kid} is published"));
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let alg = match header_of(token)["alg"].as_str().unwrap() {
        "EdDSA" => Algorithm::EdDSA,
        "ES256" => Algorithm::ES256,
        other => panic!("unexpected alg {other}"),
    };
    jsonwebtoken::decode::<GoClaims>(token, &key, &Validation::new(alg))
        .unwrap()
        .claims
}

/// Whether the service takes `token` as an access token on HTTP and on gRPC (they must
/// agree).
async fn accepted(app: &TestApp, token: &str) -> bool {
    let http = app.get_auth("/info/person", token).await.status();
    let grpc = app
        .grpc()
        .await
        .auth(AuthPayload {
            access_token: token.to_owned(),
        })
        .await;
    // gRPC answers an expired token with `expired`, any other refusal with
    // Unauthenticated.
    let grpc_accepted = match grpc {
        Ok(response) => {
            let response = response.into_inner();
            !response.expired && response.customer_id != 0
        }
        Err(status) => {
            assert_eq!(status.code(), tonic::Code::Unauthenticated);
            false
        }
    };
    assert_eq!(http == 200, grpc_accepted, "HTTP {http} and gRPC disagree");
    if http != 200 {
        assert_eq!(http, 401);
    }
    http == 200
}

#[tokio::test]
async fn tokens_of_every_algorithm_verify_against_the_served_jwks() {
    for alg in [Alg::Hs256, Alg::EdDsa, Alg::Es256] {
        let app = spawn_app_with(&Backend::Sqlite, |s| s.signing.alg = alg).await;
        let (access, refresh) = app.signup(&customer(1)).await;
        let customer = app.customer_of(&access);
        let (set, headers) = jwks(&app).await;
        let cache = headers[reqwest::header::CACHE_CONTROL].to_str().unwrap();
        assert!(cache.contains("max-age=300"), "{cache}");
        let header = header_of(&access);
        let kid = kid_of(&access);
        assert_eq!(kid, kid_of(&refresh));
        if alg == Alg::Hs256 {
            assert!(set.keys.is_empty(), "HS256 publishes nothing");
            assert_eq!(header["alg"], "HS256");
            // The kid names the secret without revealing it.
            assert!(kid.starts_with("hs-") && !kid.contains(SECRET), "{kid}");
            let mut validation = Validation::new(Algorithm::HS256);
            validation.validate_exp = true;
            let claims = jsonwebtoken::decode::<GoClaims>(
                &access,
                &DecodingKey::from_secret(SECRET.as_bytes()),
                &validation,
            )
            .unwrap()
            .claims;
            assert_eq!(claims.customer_id, customer.0);
        } else {
            assert_eq!(set.keys.len(), 1);
            let raw: Value = app
                .client
                .get(format!("{}/.well-known/jwks.json", app.base))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let jwk = &raw["keys"][0];
            assert_eq!(jwk["use"], "sig");
            assert_eq!(jwk["kid"], kid.as_str());
            assert_eq!(jwk["alg"], header["alg"]);
            assert!(jwk.get("d").is_none(), "no private part is served: {jwk}");
            let claims = verify_at_the_edge(&app, &access).await;
            assert_eq!((claims.customer_id, claims.refresh), (customer.0, false));
            let claims = verify_at_the_edge(&app, &refresh).await;
            assert_eq!((claims.customer_id, claims.refresh), (customer.0, true));
        }
        // Every verifier takes them: HTTP, gRPC, refresh, logout.
        assert!(accepted(&app, &access).await, "{alg:?}");
        let response = app
            .post("/auth/refresh", &json!({"refresh_token": refresh}))
            .await;
        assert_eq!(response.status(), 200, "{alg:?}");
        let (access, _) = tokens_of(response).await;
        assert!(accepted(&app, &access).await, "{alg:?}");
        let response = app
            .client
            .post(app.url("/auth/logout"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{alg:?}");
        assert!(!accepted(&app, &access).await, "{alg:?}: logged out");
    }
}

#[tokio::test]
async fn previous_secrets_still_verify_and_others_do_not() {
    let database = TestDatabase::fresh(&Backend::Sqlite).await;
    let old = spawn_app_on(&database, |s| {
        s.signing.secret = Some(Secret::new("the-old-secret"))
    })
    .await;
    let (old_access, old_refresh) = old.signup(&customer(1)).await;
    let customer = old.customer_of(&old_access);
    old.shutdown().await.unwrap();
    // A token as the Go service mints it (no kid), with the old secret.
    let go_style = {
        let payload = B64.encode(format!(
            r#"{{"CustomerID":{},"Refresh":false,"exp":{}}}"#,
            customer.0,
            now() + 300
        ));
        let input = format!("{}.{payload}", B64.encode(r#"{"alg":"HS256","typ":"JWT"}"#));
        let signature = HmacKey::new(b"the-old-secret").sign(input.as_bytes());
        format!("{input}.{}", B64.encode(signature))
    };

    let rotated = spawn_app_on(&database, |s| {
        s.signing.secret = Some(Secret::new("the-new-secret"));
        s.signing.previous_secrets = vec![Secret::new("the-old-secret")];
    })
    .await;
    assert!(accepted(&rotated, &old_access).await);
    assert!(accepted(&rotated, &go_style).await);
    let response = rotated
        .post("/auth/refresh", &json!({"refresh_token": old_refresh}))
        .await;
    assert_eq!(response.status(), 200);
    let (new_access, _) = tokens_of(response).await;
    assert_ne!(
        kid_of(&new_access),
        kid_of(&old_access),
        "the new secret signs"
    );
    assert!(accepted(&rotated, &new_access).await);
    rotated.shutdown().await.unwrap();

    // Once the old secret is dropped, its tokens are refused.
    let dropped = spawn_app_on(&database, |s| {
        s.signing.secret = Some(Secret::new("the-new-secret"))
    })
    .await;
    assert!(!accepted(&dropped, &old_access).await);
    assert!(!accepted(&dropped, &go_style).await);
    assert!(accepted(&dropped, &new_access).await);
    let forged = TokenCodec::new(b"a-secret-nobody-configured").mint(&Claims::legacy(
        customer,
        TokenKind::Access,
        now() + 300,
    ));
    assert!(!accepted(&dropped, &forged).await);
}

#[tokio::test]
async fn alg_confusion_and_foreign_keys_are_refused() {
    let app = spawn_app_with(&Backend::Sqlite, |s| s.signing.alg = Alg::EdDsa).await;
    let (access, _) = app.signup(&customer(1)).await;
    assert!(accepted(&app, &access).await);
    let customer = app.customer_of(&access);
    let kid = kid_of(&access);
    let payload = access.split('.').nth(1).unwrap().to_owned();
    let x = jwks(&app).await.0.keys[0].clone();
    let public_x = serde_json::to_value(&x).unwrap()["x"]
        .as_str()
        .unwrap()
        .to_owned();
    let signed = |header: Value, sign: &dyn Fn(&[u8]) -> Vec<u8>| {
        let input = format!("{}.{payload}", B64.encode(header.to_string()));
        format!("{input}.{}", B64.encode(sign(input.as_bytes())))
    };
    let attacker = KeyPair::generate(Alg::EdDsa).unwrap();
    let cases = [
        (
            "HS256 signed with the public key as the secret",
            signed(json!({"alg": "HS256", "kid": kid}), &|i| {
                HmacKey::new(public_x.as_bytes()).sign(i)
            }),
        ),
        (
            "HS256 with the public key as the secret, no kid",
            signed(json!({"alg": "HS256", "typ": "JWT"}), &|i| {
                HmacKey::new(public_x.as_bytes()).sign(i)
            }),
        ),
        (
            "alg none",
            format!("{}.{payload}.", B64.encode(r#"{"alg":"none","typ":"JWT"}"#)),
        ),
        (
            "a kid that names no key",
            signed(json!({"alg": "EdDSA", "kid": "no-such-key"}), &|i| {
                attacker.sign(i)
            }),
        ),
        (
            "the attacker's key embedded in the header",
            signed(
                json!({"alg": "EdDSA", "kid": kid, "jwk": attacker.public().jwk()}),
                &|i| attacker.sign(i),
            ),
        ),
        (
            "a jku pointing elsewhere",
            signed(
                json!({"alg": "EdDSA", "kid": kid, "jku": "https://attacker.example/jwks.json"}),
                &|i| attacker.sign(i),
            ),
        ),
        (
            "the right kid with the wrong algorithm",
            signed(json!({"alg": "ES256", "kid": kid}), &|i| attacker.sign(i)),
        ),
    ];
    for (what, token) in cases {
        assert!(!accepted(&app, &token).await, "{what} was accepted");
    }
    // The same payload with its genuine signature still passes: only the forgeries failed.
    assert!(accepted(&app, &access).await);

    // HS256 tokens of JWT_SECRET verify next to EdDSA ones, unless turned off.
    let hs256 = TokenCodec::new(SECRET.as_bytes()).mint(&Claims::legacy(
        customer,
        TokenKind::Access,
        now() + 300,
    ));
    assert!(accepted(&app, &hs256).await);
    let strict = spawn_app_on(&app.database, |s| {
        s.signing.alg = Alg::EdDsa;
        s.signing.accept_hs256 = false;
    })
    .await;
    assert!(!accepted(&strict, &hs256).await);
    assert!(
        accepted(&strict, &access).await,
        "both replicas share the key"
    );
}

#[tokio::test]
async fn a_key_file_signs_and_is_published() {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, spki::der::pem::LineEnding};
    let dir = tempfile::tempdir().unwrap();
    let signing = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let pem = signing.to_pkcs8_pem(LineEnding::LF).unwrap();
    let path = dir.path().join("ed25519.pem");
    std::fs::write(&path, pem.as_bytes()).unwrap();

    let app = spawn_app_with(&Backend::Sqlite, |s| {
        s.signing.alg = Alg::EdDsa;
        s.signing.private_key_file = Some(path.clone());
    })
    .await;
    let (access, _) = app.signup(&customer(1)).await;
    let set = jwks(&app).await.0;
    assert_eq!(set.keys.len(), 1);
    let published = serde_json::to_value(&set.keys[0]).unwrap();
    assert_eq!(
        published["x"].as_str().unwrap(),
        B64.encode(signing.verifying_key().as_bytes()),
        "the file's key is the one published"
    );
    verify_at_the_edge(&app, &access).await;
    // Nothing was generated into the database.
    let rows = app.database.query("SELECT kid FROM signing_keys").await;
    assert!(rows.is_empty(), "{rows:?}");

    // A key of another algorithm than JWT_ALG is a start-up error that says so.
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.signing.alg = Alg::Es256;
    settings.signing.private_key_file = Some(path);
    let error = match saga_account::app::Application::build(settings).await {
        Ok(_) => panic!("an Ed25519 key with JWT_ALG=ES256 must not start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("JWT_PRIVATE_KEY_FILE"), "{error}");
    assert!(
        !error.contains("PRIVATE KEY-----"),
        "no key material in errors"
    );
}

async fn rotation_on_two_replicas_publishes_one_key_and_retires_the_old_one(backend: Backend) {
    let database = TestDatabase::fresh(&backend).await;
    let clock = Arc::new(ManualClock::starting_now());
    let configure = |s: &mut saga_account::config::Settings| {
        s.signing.alg = Alg::EdDsa;
        s.signing.rotation = Duration::from_secs(30 * 86_400);
        s.session.access_ttl_secs = 900;
        s.session.refresh_ttl_secs = 1800;
    };
    let a = spawn_app_at_time(&database, clock.clone(), configure).await;
    let b = spawn_app_at_time(&database, clock.clone(), configure).await;
    let first = published_kids(&a).await;
    assert_eq!(first.len(), 1, "one key for the fleet");
    assert_eq!(published_kids(&b).await, first);
    let body = customer(1);
    let email = body["email"].as_str().unwrap().to_owned();
    let (access, _) = b.signup(&body).await;
    assert_eq!(vec![kid_of(&access)], first);

    // Ten minutes before the key is due, both replicas look at once: the next key is
    // published by exactly one of them, and does not sign yet.
    clock.advance(Duration::from_secs(30 * 86_400 - 600));
    let (left, right) = tokio::join!(a.keys.maintain(), b.keys.maintain());
    left.unwrap();
    right.unwrap();
    a.keys.maintain().await.unwrap();
    b.keys.maintain().await.unwrap();
    let both = published_kids(&a).await;
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!(published_kids(&b).await, both);
    let rows = database.query("SELECT kid FROM signing_keys").await;
    assert_eq!(rows.len(), 2, "one insert won: {rows:?}");
    let next = both.iter().find(|k| !first.contains(k)).unwrap().clone();
    let (old_access, old_refresh) = a.login(&email, "password-123").await;
    assert_eq!(
        kid_of(&old_access),
        first[0],
        "the new key waits for its time"
    );
    // Gateways caching the JWKS already know the key before it signs.
    verify_at_the_edge(&b, &old_access).await;

    // Its time comes: both sign with it; the old key's tokens still verify everywhere.
    clock.advance(Duration::from_secs(600));
    a.keys.maintain().await.unwrap();
    b.keys.maintain().await.unwrap();
    for app in [&a, &b] {
        let (access, _) = app.login(&email, "password-123").await;
        assert_eq!(kid_of(&access), next);
        verify_at_the_edge(app, &access).await;
        assert!(accepted(app, &old_access).await);
    }
    let response = b
        .post("/auth/refresh", &json!({"refresh_token": old_refresh}))
        .await;
    assert_eq!(response.status(), 200);
    let (refreshed, _) = tokens_of(response).await;
    assert_eq!(kid_of(&refreshed), next);
    assert_eq!(published_kids(&a).await, both);

    // Once every token the old key signed has expired (the longest lifetime, plus a
    // margin), it leaves the JWKS and the database.
    clock.advance(Duration::from_secs(1800 + 60));
    a.keys.maintain().await.unwrap();
    assert_eq!(published_kids(&a).await, both, "still within the margin");
    clock.advance(Duration::from_secs(61));
    a.keys.maintain().await.unwrap();
    b.keys.maintain().await.unwrap();
    assert_eq!(published_kids(&a).await, vec![next.clone()]);
    assert_eq!(published_kids(&b).await, vec![next.clone()]);
    assert_eq!(
        database.query("SELECT kid FROM signing_keys").await.len(),
        1
    );
    let (access, _) = b.login(&email, "password-123").await;
    assert_eq!(kid_of(&access), next);
}

async fn a_fleet_moves_from_hs256_to_eddsa_without_a_refused_token(backend: Backend) {
    let database = TestDatabase::fresh(&backend).await;
    let clock = Arc::new(ManualClock::starting_now());
    let old = spawn_app_at_time(&database, clock.clone(), |_| {}).await;
    let body = customer(1);
    let email = body["email"].as_str().unwrap().to_owned();
    let (hs256_access, hs256_refresh) = old.signup(&body).await;

    // The operator publishes the first EdDSA key ahead; the HS256 replica reads it.
    let output = std::process::Command::new(binary())
        .args(["keys", "publish"])
        .env("DB_DSN", &database.dsn)
        .env("JWT_ALG", "EdDSA")
        .env("JWT_SECRET", SECRET)
        .env("DATA_DIR", tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    old.keys.maintain().await.unwrap();
    let kids = published_kids(&old).await;
    assert_eq!(kids.len(), 1, "the HS256 replica publishes the coming key");

    // A replica switched to EdDSA before the key's time signs HS256 still.
    let new = spawn_app_at_time(&database, clock.clone(), |s| s.signing.alg = Alg::EdDsa).await;
    let (early, _) = new.login(&email, "password-123").await;
    assert_eq!(header_of(&early)["alg"], "HS256");
    assert!(accepted(&old, &early).await);
    assert!(accepted(&new, &hs256_access).await);

    clock.advance(Duration::from_secs(601));
    new.keys.maintain().await.unwrap();
    old.keys.maintain().await.unwrap();
    let (eddsa_access, eddsa_refresh) = new.login(&email, "password-123").await;
    assert_eq!(header_of(&eddsa_access)["alg"], "EdDSA");
    assert_eq!(vec![kid_of(&eddsa_access)], kids);
    // Each replica takes the other's tokens: nobody is logged out.
    assert!(accepted(&old, &eddsa_access).await);
    let response = old
        .post("/auth/refresh", &json!({"refresh_token": eddsa_refresh}))
        .await;
    assert_eq!(response.status(), 200);
    let response = new
        .post("/auth/refresh", &json!({"refresh_token": hs256_refresh}))
        .await;
    assert_eq!(response.status(), 200, "a refresh token of the HS256 days");
    let (access, _) = tokens_of(response).await;
    assert_eq!(header_of(&access)["alg"], "EdDSA");
}
