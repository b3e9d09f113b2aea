use saga_account::{
    domain::CustomerId,
    service::auth::{Claims, TokenKind},
};
use serde_json::json;

use crate::{backend_tests, helpers::*};

backend_tests!(refresh_answers_each_outcome);

async fn refresh_answers_each_outcome(backend: Backend) {
    let app = spawn_app(&backend).await;
    let (access, refresh) = app.signup(&customer(20)).await;
    let id = app.customer_of(&access);

    let ok = app
        .post("/auth/refresh", &json!({"refresh_token": refresh}))
        .await;
    assert_eq!(ok.status(), 200);
    let (new_access, new_refresh) = tokens_of(ok).await;
    assert_eq!(app.customer_of(&new_access), id);
    assert_eq!(
        app.tokens
            .verify(&new_refresh, TokenKind::Refresh, now())
            .map(|c| c.customer),
        Ok(id)
    );

    for body in [
        json!({}),
        json!({"refresh_token": ""}),
        json!({"refresh_token": 1}),
        json!({"token": refresh}),
    ] {
        assert_msg(
            app.post("/auth/refresh", &body).await,
            400,
            "invalid parameter",
        )
        .await;
    }
    let forged = saga_account::service::auth::TokenCodec::new(b"another secret")
        .mint(&Claims::legacy(id, TokenKind::Refresh, now() + 60));
    for bad in ["garbage", "a.b.c", forged.as_str(), access.as_str()] {
        assert_msg(
            app.post("/auth/refresh", &json!({"refresh_token": bad}))
                .await,
            401,
            "invalid token",
        )
        .await;
    }
    let expired = app
        .tokens
        .mint(&Claims::legacy(id, TokenKind::Refresh, now() - 1));
    assert_msg(
        app.post("/auth/refresh", &json!({"refresh_token": expired}))
            .await,
        401,
        "token expired",
    )
    .await;

    let stranger = app.tokens.mint(&Claims::legacy(
        CustomerId(42),
        TokenKind::Refresh,
        now() + 60,
    ));
    assert_msg(
        app.post("/auth/refresh", &json!({"refresh_token": stranger}))
            .await,
        404,
        "customer not found",
    )
    .await;

    app.deactivate(id).await;
    assert_msg(
        app.post("/auth/refresh", &json!({"refresh_token": refresh}))
            .await,
        401,
        "customer inactive",
    )
    .await;
    app.shutdown().await.unwrap();
}
