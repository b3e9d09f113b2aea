//! Rule 15.11: tokens carry exactly the claims of sections 3 and 9, no others; the API
//! document lists every status of section 1's tables, 500 included.

use std::collections::BTreeSet;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::helpers::*;

/// The JSON keys of a token's payload, read as anyone holding the token can.
fn claim_names(token: &str) -> BTreeSet<String> {
    let payload = token.split('.').nth(1).expect("three segments");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    let claims: Value = serde_json::from_slice(&json).expect("JSON payload");
    claims
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn assert_exact_claims(origin: &str, (access, refresh): &(String, String)) {
    assert_eq!(
        claim_names(access),
        names(&["CustomerID", "Refresh", "exp", "iat", "sid"]),
        "access token of {origin}"
    );
    assert_eq!(
        claim_names(refresh),
        names(&["CustomerID", "Refresh", "exp", "iat", "sid", "jti"]),
        "refresh token of {origin}"
    );
}

#[tokio::test]
async fn tokens_carry_exactly_the_claims_of_the_spec() {
    let app = spawn_app(&Backend::Sqlite).await;
    let signup = app.signup(&customer(1501)).await;
    assert_exact_claims("signup", &signup);
    let login = app.login("ming1501@example.com", "password-123").await;
    assert_exact_claims("login", &login);
    let statements = |operation: &str| {
        app.metrics
            .db_query_duration
            .with_label_values(&[operation])
            .get_sample_count()
    };
    let reads = statements("session_get");
    let response = app
        .post("/auth/refresh", &json!({"refresh_token": login.1}))
        .await;
    assert_eq!(response.status(), 200);
    let refreshed = tokens_of(response).await;
    assert_exact_claims("refresh", &refreshed);
    // Without a claim for the session's end, a refresh far from it is still one statement:
    // the compare-and-set, no read of the session.
    assert_eq!(
        statements("session_get"),
        reads,
        "a refresh read the session"
    );
    // And the refreshed pair works: the session is still the one it names.
    assert_eq!(
        app.get_auth("/info/person", &refreshed.0).await.status(),
        200
    );
    let response = app
        .post("/auth/refresh", &json!({"refresh_token": refreshed.1}))
        .await;
    assert_eq!(response.status(), 200);
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_api_document_lists_the_500_of_section_1() {
    let app = spawn_app(&Backend::Sqlite).await;
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (path, method) in [
        ("/api/account/auth/signup", "post"),
        ("/api/account/auth/login", "post"),
        ("/api/account/info/person", "put"),
        ("/api/account/info/shipping", "put"),
    ] {
        let responses = &doc["paths"][path][method]["responses"];
        assert!(responses.is_object(), "{method} {path}: {responses}");
        let error = &responses["500"];
        assert!(
            error["description"]
                .as_str()
                .is_some_and(|d| d.contains("server error")),
            "{method} {path} documents its 500 `server error`: {responses}"
        );
    }
    app.shutdown().await.unwrap();
}
