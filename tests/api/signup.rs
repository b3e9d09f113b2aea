use serde_json::{Value, json};

use crate::{backend_tests, helpers::*};

backend_tests!(
    signup_returns_201_and_a_working_token_pair,
    signup_rejects_every_invalid_field_and_stores_nothing,
    duplicate_email_or_phone_is_400_duplicate_entry,
    concurrent_signups_get_distinct_ids,
    values_at_the_column_limits_are_stored_whole,
);

async fn values_at_the_column_limits_are_stored_whole(backend: Backend) {
    let app = spawn_app(&backend).await;
    let email = format!("{}@example.com", "e".repeat(320 - "@example.com".len()));
    let body = json!({
        "password": "p".repeat(128),
        "firstname": "F".repeat(50),
        "lastname": "é".repeat(50),
        "email": email,
        "address": "A".repeat(10_000),
        "phone_number": "1".repeat(20),
    });
    let (access, _) = app.signup(&body).await;
    let person: Value = app.get_json("/info/person", &access).await;
    assert_eq!(
        person,
        json!({"firstname": body["firstname"], "lastname": body["lastname"], "email": email})
    );
    let shipping: Value = app.get_json("/info/shipping", &access).await;
    assert_eq!(
        shipping,
        json!({"address": body["address"], "phone_number": body["phone_number"]})
    );
    let login = app
        .post(
            "/auth/login",
            &json!({"email": email, "password": "p".repeat(128)}),
        )
        .await;
    assert_eq!(login.status(), 200);
    app.shutdown().await.unwrap();
}

async fn signup_returns_201_and_a_working_token_pair(backend: Backend) {
    let app = spawn_app(&backend).await;
    let (access, refresh) = app.signup(&customer(1)).await;
    let id = app.customer_of(&access);
    assert_eq!(
        app.tokens
            .verify(
                &refresh,
                saga_account::service::auth::TokenKind::Refresh,
                now()
            )
            .map(|c| c.customer),
        Ok(id)
    );

    let person: Value = app.get_json("/info/person", &access).await;
    assert_eq!(
        person,
        json!({"firstname": "Ming", "lastname": "Hsu", "email": "ming1@example.com"})
    );
    let shipping: Value = app.get_json("/info/shipping", &access).await;
    assert_eq!(
        shipping,
        json!({"address": "1 Main Street", "phone_number": "0912000001"})
    );

    // The stored hash is bcrypt cost 10 with the Go prefix.
    let login = app
        .post(
            "/auth/login",
            &json!({"email": "ming1@example.com", "password": "password-123"}),
        )
        .await;
    assert_eq!(login.status(), 200);
    app.shutdown().await.unwrap();
}

async fn signup_rejects_every_invalid_field_and_stores_nothing(backend: Backend) {
    let app = spawn_app(&backend).await;
    let with = |field: &str, value: Value| {
        let mut body = customer(2);
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = customer(2);
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let mut bad = vec![
        with("password", json!("short7!")),
        with("password", json!("x".repeat(129))),
        with("email", json!("not-an-email")),
        with("email", json!(format!("{}@example.com", "a".repeat(310)))),
        with("firstname", json!("n".repeat(51))),
        with("lastname", json!("   ")),
        with("phone_number", json!("1".repeat(21))),
        with("firstname", json!(42)),
        with("email", json!(null)),
        with("address", json!("")),
        json!([]),
        json!("string"),
    ];
    for field in [
        "password",
        "firstname",
        "lastname",
        "email",
        "address",
        "phone_number",
    ] {
        bad.push(without(field));
    }
    for body in &bad {
        assert_msg(
            app.post("/auth/signup", body).await,
            400,
            "invalid parameter",
        )
        .await;
    }
    // Nothing was stored: the valid version of the same customer signs up fine.
    app.signup(&customer(2)).await;
    app.shutdown().await.unwrap();
}

async fn duplicate_email_or_phone_is_400_duplicate_entry(backend: Backend) {
    let app = spawn_app(&backend).await;
    app.signup(&customer(3)).await;
    let mut same_email = customer(4);
    same_email["email"] = json!("ming3@example.com");
    assert_msg(
        app.post("/auth/signup", &same_email).await,
        400,
        "duplicate entry",
    )
    .await;
    let mut same_email_other_case = customer(4);
    same_email_other_case["email"] = json!("MING3@example.com");
    assert_msg(
        app.post("/auth/signup", &same_email_other_case).await,
        400,
        "duplicate entry",
    )
    .await;
    let mut same_phone = customer(4);
    same_phone["phone_number"] = customer(3)["phone_number"].clone();
    assert_msg(
        app.post("/auth/signup", &same_phone).await,
        400,
        "duplicate entry",
    )
    .await;
    app.signup(&customer(4)).await;
    app.shutdown().await.unwrap();
}

async fn concurrent_signups_get_distinct_ids(backend: Backend) {
    let app = spawn_app(&backend).await;
    let signups = (100..116).map(|n| {
        let app = &app;
        async move { app.customer_of(&app.signup(&customer(n)).await.0) }
    });
    let ids = futures_util::future::join_all(signups).await;
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len());
    app.shutdown().await.unwrap();
}
