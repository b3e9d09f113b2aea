//! Rule 15.11: a token is accepted in exactly one spelling. ES256 signatures with a high S
//! (the mirror `n - s` of a valid one, which verifies with plain ECDSA) and base64url with
//! padding in any segment are refused by HTTP and gRPC alike.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use saga_account::{service::keys::Alg, transport::grpc::pb::AuthPayload};
use sha2::Sha256;

use crate::helpers::*;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Whether the service takes `token` as an access token, asked over HTTP and gRPC (both
/// must agree).
async fn accepted(app: &TestApp, token: &str) -> bool {
    let http = app.get_auth("/info/person", token).await.status().as_u16();
    let grpc = app
        .grpc()
        .await
        .auth(AuthPayload {
            access_token: token.to_owned(),
        })
        .await;
    let grpc = match grpc {
        Ok(response) => !response.into_inner().expired,
        Err(status) => {
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
            false
        }
    };
    assert!(http == 200 || http == 401, "HTTP {http}");
    assert_eq!(
        http == 200,
        grpc,
        "HTTP {http} and gRPC disagree on {token}"
    );
    grpc
}

/// `(low, high)`: the token with its signature in the low-S form and in the high-S form.
fn both_s_forms(token: &str) -> (String, String) {
    let (input, signature) = token.rsplit_once('.').unwrap();
    let raw = B64.decode(signature).unwrap();
    let signature = p256::ecdsa::Signature::from_slice(&raw).unwrap();
    let (r, s) = signature.split_scalars();
    let mirrored =
        p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s.as_ref()).to_bytes()).unwrap();
    let (low, high) = match signature.normalize_s() {
        // `normalize_s` answers only for a high S.
        Some(_) => (mirrored, signature),
        None => (signature, mirrored),
    };
    let spell = |sig: p256::ecdsa::Signature| format!("{input}.{}", B64.encode(sig.to_bytes()));
    (spell(low), spell(high))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es256_tokens_with_a_high_s_are_refused() {
    let app = spawn_app_with(&Backend::Sqlite, |s| s.signing.alg = Alg::Es256).await;
    // Several tokens: whichever S each signature happened to get.
    for n in 0..8 {
        let (access, _) = app.signup(&customer(1510 + n)).await;
        let (low, high) = both_s_forms(&access);
        assert_eq!(access, low, "the service signs in the low-S form only");
        assert!(accepted(&app, &low).await, "the token as signed");
        assert!(
            !accepted(&app, &high).await,
            "the high-S mirror of a valid signature is refused"
        );
    }
    app.shutdown().await.unwrap();
}

/// `segment` with the `=` padding standard base64 would give it (none when it needs none).
fn padded(segment: &str) -> Option<String> {
    match segment.len() % 4 {
        2 => Some(format!("{segment}==")),
        3 => Some(format!("{segment}=")),
        _ => None,
    }
}

fn hs256(input: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn padded_base64url_is_refused_in_every_segment() {
    // HS256: the test knows the secret, so it can sign a padded header or payload the way
    // someone holding the secret (a Go replica, a tool) might.
    let app = spawn_app(&Backend::Sqlite).await;
    let (access, _) = app.signup(&customer(1520)).await;
    assert!(accepted(&app, &access).await);
    let parts: Vec<&str> = access.split('.').collect();
    // A payload that needs padding, whatever the customer id: pad the JSON with spaces.
    let payload = String::from_utf8(B64.decode(parts[1]).unwrap()).unwrap();
    let mut spaced = payload.clone();
    while B64.encode(&spaced).len().is_multiple_of(4) {
        spaced.insert(1, ' ');
    }
    let spaced = B64.encode(&spaced);
    let unpadded = format!("{}.{spaced}", parts[0]);
    let control = format!("{unpadded}.{}", hs256(&unpadded));
    assert!(
        accepted(&app, &control).await,
        "the same payload, unpadded, is fine"
    );
    let mut forms = Vec::new();
    // The signature segment padded: same bytes, same signing input.
    forms.push(format!("{unpadded}.{}", padded(&hs256(&unpadded)).unwrap()));
    // The payload (and the header, when it needs padding) padded, and signed that way.
    let input = format!("{}.{}", parts[0], padded(&spaced).unwrap());
    forms.push(format!("{input}.{}", hs256(&input)));
    if let Some(header) = padded(parts[0]) {
        let input = format!("{header}.{spaced}");
        forms.push(format!("{input}.{}", hs256(&input)));
    }
    for form in &forms {
        assert!(!accepted(&app, form).await, "padded: {form}");
    }
    app.shutdown().await.unwrap();

    // ES256: the signature (64 bytes, 86 characters) padded.
    let app = spawn_app_with(&Backend::Sqlite, |s| s.signing.alg = Alg::Es256).await;
    let (access, _) = app.signup(&customer(1521)).await;
    let (input, signature) = access.rsplit_once('.').unwrap();
    assert!(accepted(&app, &access).await);
    let form = format!("{input}.{}", padded(signature).unwrap());
    assert!(!accepted(&app, &form).await, "padded: {form}");
    app.shutdown().await.unwrap();
}
