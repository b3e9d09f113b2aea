use serde_json::json;

use crate::{backend_tests, helpers::*};

backend_tests!(
    login_answers_each_outcome,
    legacy_go_hashes_log_in,
    a_password_is_the_whole_password,
    login_rejects_invalid_input,
);

async fn login_answers_each_outcome(backend: Backend) {
    let app = spawn_app(&backend).await;
    let (access, _) = app.signup(&customer(10)).await;
    let ok = app
        .post(
            "/auth/login",
            &json!({"email": "ming10@example.com", "password": "password-123"}),
        )
        .await;
    assert_eq!(ok.status(), 200);
    let (login_access, _) = tokens_of(ok).await;
    assert_eq!(app.customer_of(&login_access), app.customer_of(&access));

    let wrong = app
        .post(
            "/auth/login",
            &json!({"email": "ming10@example.com", "password": "password-124"}),
        )
        .await;
    assert_msg(wrong, 401, "authentication failed").await;
    let unknown = app
        .post(
            "/auth/login",
            &json!({"email": "nobody@example.com", "password": "password-123"}),
        )
        .await;
    assert_msg(unknown, 404, "customer not found").await;

    let id = app.customer_of(&access);
    app.deactivate(id).await;
    let inactive = app
        .post(
            "/auth/login",
            &json!({"email": "ming10@example.com", "password": "password-123"}),
        )
        .await;
    assert_msg(inactive, 401, "customer inactive").await;
    app.shutdown().await.unwrap();
}

/// Rows written by the Go service (and other bcrypt implementations) keep working. The hashes
/// were made by Python's `bcrypt` package, not by this service.
async fn legacy_go_hashes_log_in(backend: Backend) {
    let app = spawn_app(&backend).await;
    let legacy = [
        (
            1001,
            "$2a$10$MbnA4HRLL/OoEvzlJ4sPuO3ZoepnyOMzvC4opWrvOI6odVNh.2t3O",
        ),
        (
            1002,
            "$2b$10$Xf2loRmrbXj04au..K0fdOivDqoM9nEkmWUogcmp81aCu0eEWbsuK",
        ),
        (
            1003,
            "$2y$10$Xf2loRmrbXj04au..K0fdOivDqoM9nEkmWUogcmp81aCu0eEWbsuK",
        ),
    ];
    for (id, hash) in legacy {
        app.sql(&format!(
            "INSERT INTO customers (id, active, first_name, last_name, email, address, phone_number, \
             bcrypted_password, updated_at, created_at) VALUES ({id}, TRUE, 'Go', 'Era', 'legacy{id}@example.com', \
             'Old Street', 'p{id}', '{hash}', 1600000000000, 1600000000000)"
        ))
        .await;
        let ok = app.post("/auth/login", &json!({"email": format!("legacy{id}@example.com"), "password": "legacy-password-1"})).await;
        assert_eq!(ok.status(), 200, "{hash}");
        let (access, _) = tokens_of(ok).await;
        assert_eq!(app.customer_of(&access).0, id);
        let wrong = app.post("/auth/login", &json!({"email": format!("legacy{id}@example.com"), "password": "legacy-password-2"})).await;
        assert_msg(wrong, 401, "authentication failed").await;
    }
    app.shutdown().await.unwrap();
}

/// bcrypt reads 72 bytes; two passwords that share them must still be two passwords.
async fn a_password_is_the_whole_password(backend: Backend) {
    let app = spawn_app(&backend).await;
    let long = format!("{}-one", "p".repeat(100));
    let mut body = customer(11);
    body["password"] = json!(long);
    app.signup(&body).await;
    let same_prefix = format!("{}-two", "p".repeat(100));
    for other in [same_prefix, "p".repeat(72), "p".repeat(100)] {
        let response = app
            .post(
                "/auth/login",
                &json!({"email": "ming11@example.com", "password": other}),
            )
            .await;
        assert_msg(response, 401, "authentication failed").await;
    }
    let ok = app
        .post(
            "/auth/login",
            &json!({"email": "ming11@example.com", "password": long}),
        )
        .await;
    assert_eq!(ok.status(), 200);
    app.shutdown().await.unwrap();
}

async fn login_rejects_invalid_input(backend: Backend) {
    let app = spawn_app(&backend).await;
    for body in [
        json!({"email": "ming@example.com"}),
        json!({"password": "password-123"}),
        json!({"email": "not an email", "password": "password-123"}),
        json!({"email": "ming@example.com", "password": ""}),
        json!({"email": 5, "password": "password-123"}),
        json!(null),
    ] {
        assert_msg(
            app.post("/auth/login", &body).await,
            400,
            "invalid parameter",
        )
        .await;
    }
    app.shutdown().await.unwrap();
}
