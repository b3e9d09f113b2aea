use saga_account::{
    domain::CustomerId,
    service::auth::{Claims, TokenKind},
};
use serde_json::{Value, json};

use crate::{backend_tests, helpers::*};

backend_tests!(
    info_reads_and_updates,
    updates_reject_duplicates_and_invalid_input_and_change_nothing,
    authorization_header_rules,
    unknown_customer_is_404,
);

async fn info_reads_and_updates(backend: Backend) {
    let app = spawn_app(&backend).await;
    let (access, _) = app.signup(&customer(30)).await;

    let put = app
        .put_auth(
            "/info/person",
            &access,
            &json!({"firstname": "Mei", "lastname": "Lin", "email": "mei@example.com"}),
        )
        .await;
    assert_msg(put, 200, "ok").await;
    let person: Value = app.get_json("/info/person", &access).await;
    assert_eq!(
        person,
        json!({"firstname": "Mei", "lastname": "Lin", "email": "mei@example.com"})
    );
    // The new email logs in, the old one no longer does.
    let new = app
        .post(
            "/auth/login",
            &json!({"email": "mei@example.com", "password": "password-123"}),
        )
        .await;
    assert_eq!(new.status(), 200);
    let old = app
        .post(
            "/auth/login",
            &json!({"email": "ming30@example.com", "password": "password-123"}),
        )
        .await;
    assert_msg(old, 404, "customer not found").await;

    let put = app
        .put_auth(
            "/info/shipping",
            &access,
            &json!({"address": "2 Side Road", "phone_number": "+886 2 1234"}),
        )
        .await;
    assert_msg(put, 200, "ok").await;
    let shipping: Value = app.get_json("/info/shipping", &access).await;
    assert_eq!(
        shipping,
        json!({"address": "2 Side Road", "phone_number": "+886 2 1234"})
    );

    // Writing the same values again is still a success.
    let again = app
        .put_auth(
            "/info/shipping",
            &access,
            &json!({"address": "2 Side Road", "phone_number": "+886 2 1234"}),
        )
        .await;
    assert_msg(again, 200, "ok").await;
    app.shutdown().await.unwrap();
}

async fn updates_reject_duplicates_and_invalid_input_and_change_nothing(backend: Backend) {
    let app = spawn_app(&backend).await;
    let (access, _) = app.signup(&customer(31)).await;
    app.signup(&customer(32)).await;

    // Fix (SPEC section 1): the Go service answered 500 here.
    let dup_email = app
        .put_auth(
            "/info/person",
            &access,
            &json!({"firstname": "A", "lastname": "B", "email": "ming32@example.com"}),
        )
        .await;
    assert_msg(dup_email, 400, "duplicate entry").await;
    let dup_phone = app
        .put_auth(
            "/info/shipping",
            &access,
            &json!({"address": "x", "phone_number": "0912000032"}),
        )
        .await;
    assert_msg(dup_phone, 400, "duplicate entry").await;

    for body in [
        json!({"firstname": "A", "lastname": "B"}),
        json!({"firstname": "A", "lastname": "B", "email": "bad"}),
        json!({"firstname": "A".repeat(51), "lastname": "B", "email": "a@b.co"}),
        json!({"firstname": "", "lastname": "B", "email": "a@b.co"}),
    ] {
        assert_msg(
            app.put_auth("/info/person", &access, &body).await,
            400,
            "invalid parameter",
        )
        .await;
    }
    for body in [
        json!({"address": "x"}),
        json!({"address": "x", "phone_number": "1".repeat(21)}),
        json!([1]),
    ] {
        assert_msg(
            app.put_auth("/info/shipping", &access, &body).await,
            400,
            "invalid parameter",
        )
        .await;
    }
    let person: Value = app.get_json("/info/person", &access).await;
    assert_eq!(
        person,
        json!({"firstname": "Ming", "lastname": "Hsu", "email": "ming31@example.com"})
    );
    let shipping: Value = app.get_json("/info/shipping", &access).await;
    assert_eq!(
        shipping,
        json!({"address": "31 Main Street", "phone_number": "0912000031"})
    );
    app.shutdown().await.unwrap();
}

async fn authorization_header_rules(backend: Backend) {
    let app = spawn_app(&backend).await;
    let (access, refresh) = app.signup(&customer(33)).await;
    let id = app.customer_of(&access);
    let url = app.url("/info/person");

    let missing = app.client.get(&url).send().await.unwrap();
    assert_empty_401(missing).await;
    for header in [
        access.clone(),
        format!("bearer  {access}"),
        format!("bearer {access} x"),
        "bearer ".into(),
    ] {
        let response = app
            .client
            .get(&url)
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_empty_401(response).await;
    }
    // Any scheme word works, as in the Go middleware.
    let other_scheme = app
        .client
        .get(&url)
        .header("authorization", format!("Token {access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(other_scheme.status(), 200);

    let forged = saga_account::service::auth::TokenCodec::new(b"wrong").mint(&Claims::legacy(
        id,
        TokenKind::Access,
        now() + 60,
    ));
    for token in [refresh.as_str(), forged.as_str(), "x.y.z"] {
        assert_empty_401(app.get_auth("/info/person", token).await).await;
        assert_empty_401(
            app.put_auth(
                "/info/shipping",
                token,
                &json!({"address": "a", "phone_number": "1"}),
            )
            .await,
        )
        .await;
    }
    let expired = app
        .tokens
        .mint(&Claims::legacy(id, TokenKind::Access, now() - 1));
    assert_msg(
        app.get_auth("/info/shipping", &expired).await,
        401,
        "token expired",
    )
    .await;
    app.shutdown().await.unwrap();
}

async fn unknown_customer_is_404(backend: Backend) {
    let app = spawn_app(&backend).await;
    let token = app.tokens.mint(&Claims::legacy(
        CustomerId(7),
        TokenKind::Access,
        now() + 60,
    ));
    assert_msg(
        app.get_auth("/info/person", &token).await,
        404,
        "customer not found",
    )
    .await;
    assert_msg(
        app.get_auth("/info/shipping", &token).await,
        404,
        "customer not found",
    )
    .await;
    let put = app
        .put_auth(
            "/info/shipping",
            &token,
            &json!({"address": "a", "phone_number": "1"}),
        )
        .await;
    assert_msg(put, 404, "customer not found").await;
    app.shutdown().await.unwrap();
}
