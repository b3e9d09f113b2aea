use saga_account::{
    domain::CustomerId,
    service::auth::{Claims, TokenCodec, TokenKind},
    transport::grpc::pb::AuthPayload,
};
use tonic::Code;

use crate::helpers::*;

fn payload(token: &str) -> AuthPayload {
    AuthPayload {
        access_token: token.to_owned(),
    }
}

#[tokio::test]
async fn auth_answers_valid_expired_and_invalid_tokens() {
    let app = spawn_app(&Backend::Sqlite).await;
    let mut client = app.grpc().await;

    // A token minted exactly as the Go service mints it (same secret, same claims).
    let valid = app.tokens.mint(&Claims::legacy(
        CustomerId(123_456_789),
        TokenKind::Access,
        now() + 300,
    ));
    let reply = client.auth(payload(&valid)).await.unwrap().into_inner();
    assert_eq!((reply.customer_id, reply.expired), (123_456_789, false));

    let expired = app
        .tokens
        .mint(&Claims::legacy(CustomerId(5), TokenKind::Access, now() - 1));
    let reply = client.auth(payload(&expired)).await.unwrap().into_inner();
    assert_eq!((reply.customer_id, reply.expired), (0, true));

    let refresh = app.tokens.mint(&Claims::legacy(
        CustomerId(5),
        TokenKind::Refresh,
        now() + 300,
    ));
    let forged = TokenCodec::new(b"not the secret").mint(&Claims::legacy(
        CustomerId(5),
        TokenKind::Access,
        now() + 300,
    ));
    let forged_expired = TokenCodec::new(b"not the secret").mint(&Claims::legacy(
        CustomerId(5),
        TokenKind::Access,
        now() - 100,
    ));
    let alg_none = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
        valid.split('.').nth(1).unwrap()
    );
    for bad in [
        "",
        "garbage",
        refresh.as_str(),
        forged.as_str(),
        forged_expired.as_str(),
        alg_none.as_str(),
    ] {
        let status = client.auth(payload(bad)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{bad}");
        assert_eq!(status.message(), "invalid token");
    }
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn tokens_from_signup_pass_auth() {
    let app = spawn_app(&Backend::Sqlite).await;
    let (access, _) = app.signup(&customer(40)).await;
    let reply = app
        .grpc()
        .await
        .auth(payload(&access))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.customer_id, app.customer_of(&access).0);
    assert!(!reply.expired);
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };

    let app = spawn_app(&Backend::Sqlite).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();

    let mut health = HealthClient::new(channel.clone());
    for service in ["", "auth.AuthService"] {
        let reply = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.status(), ServingStatus::Serving, "{service:?}");
    }

    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("unexpected reflection reply {reply:?}");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"auth.AuthService"), "{names:?}");
    app.shutdown().await.unwrap();
}
