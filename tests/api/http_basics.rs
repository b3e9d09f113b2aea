use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

const CORS: [(&str, &str); 5] = [
    ("access-control-allow-origin", "*"),
    ("access-control-allow-credentials", "true"),
    (
        "access-control-allow-headers",
        "Content-Type, Content-Length, Accept-Encoding, X-CSRF-Token, Authorization, Accept, Origin, Cache-Control, X-Requested-With",
    ),
    (
        "access-control-allow-methods",
        "POST, DELETE, GET, PUT, PATCH, OPTIONS",
    ),
    ("access-control-max-age", "86400"),
];

fn assert_cors(response: &reqwest::Response) {
    for (name, value) in CORS {
        assert_eq!(
            response.headers().get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name}"
        );
    }
}

#[tokio::test]
async fn every_response_carries_cors_and_options_is_204() {
    let app = spawn_app(&Backend::Sqlite).await;
    let ok = app.post("/auth/signup", &customer(50)).await;
    assert_cors(&ok);
    let error = app.post("/auth/login", &json!({})).await;
    assert_cors(&error);
    let unauthorized = app
        .client
        .get(app.url("/info/person"))
        .send()
        .await
        .unwrap();
    assert_cors(&unauthorized);
    for path in [
        "/api/account/auth/login",
        "/api/account/info/person",
        "/anything/else",
    ] {
        let response = app
            .client
            .request(Method::OPTIONS, format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "{path}");
        assert_cors(&response);
        assert!(response.bytes().await.unwrap().is_empty());
    }
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_routes_are_404_json_and_wrong_methods_405() {
    let app = spawn_app(&Backend::Sqlite).await;
    for path in [
        "/",
        "/api/account",
        "/api/account/auth/nope",
        "/api/auth/login",
        "/%FF%FE",
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_msg(response, 404, "not found").await;
    }
    let response = app
        .client
        .delete(app.url("/info/person"))
        .send()
        .await
        .unwrap();
    assert_msg(response, 405, "method not allowed").await;
    let response = app.client.get(app.url("/auth/login")).send().await.unwrap();
    assert_msg(response, 405, "method not allowed").await;
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn json_is_read_whatever_the_content_type() {
    let app = spawn_app(&Backend::Sqlite).await;
    // What `curl --data '{...}'` sends.
    let body = customer(51).to_string();
    let response = app
        .post_raw("/auth/signup", body, "application/x-www-form-urlencoded")
        .await;
    assert_eq!(response.status(), 201);
    let login = json!({"email": "ming51@example.com", "password": "password-123"}).to_string();
    for content_type in ["text/plain", "application/octet-stream", ""] {
        let response = app
            .post_raw("/auth/login", login.clone(), content_type)
            .await;
        assert_eq!(response.status(), 200, "{content_type:?}");
    }
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn hostile_bodies_get_a_4xx_and_leave_the_service_healthy() {
    let app = spawn_app(&Backend::Sqlite).await;
    let oversized = format!(
        r#"{{"email":"a@b.co","password":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    let response = app
        .post_raw("/auth/login", oversized, "application/json")
        .await;
    assert_msg(response, 413, "request body too large").await;

    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"{\"email\": \"\xff\xfe@b.co\", \"password\": \"x\"}".to_vec(),
        b"\xff\xfe\xfd".to_vec(),
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]".to_vec(),
        "[".repeat(60_000).into_bytes(),
        br#"{"email":"a@b.co","password":"x","email":"c@d.co"}"#.to_vec(),
        br#"{"email":"a@b.co","password":{"nested":true}}"#.to_vec(),
        br#"{"email":"a@b.co\u0000","password":"password-123"}"#.to_vec(),
        b"null".to_vec(),
        b"123".to_vec(),
    ];
    for path in ["/auth/signup", "/auth/login", "/auth/refresh"] {
        for body in &bodies {
            let response = app.post_raw(path, body.clone(), "application/json").await;
            assert_eq!(
                response.status(),
                400,
                "{path} {:?}",
                String::from_utf8_lossy(&body[..body.len().min(40)])
            );
        }
    }
    let weird_token = app
        .client
        .get(app.url("/info/person"))
        .header("authorization", b"bearer \xff\xfe".as_slice())
        .send()
        .await
        .unwrap();
    assert_empty_401(weird_token).await;

    // Still healthy: a normal signup works.
    app.signup(&customer(52)).await;
    app.shutdown().await.unwrap();
}
