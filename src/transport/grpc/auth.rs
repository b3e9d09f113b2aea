//! `auth.AuthService/Auth`: verifies an access token, nothing else (no database, no cache).

use tonic::{Request, Response, Status};

use super::{pb, status::status};
use crate::{
    metrics::{Metrics, Transport},
    service::auth::{AuthService, TokenError},
};

pub struct AuthGrpc {
    auth: AuthService,
    metrics: Metrics,
}

impl AuthGrpc {
    pub fn new(auth: AuthService, metrics: Metrics) -> Self {
        Self { auth, metrics }
    }
}

#[tonic::async_trait]
impl pb::auth_service_server::AuthService for AuthGrpc {
    async fn auth(
        &self,
        request: Request<pb::AuthPayload>,
    ) -> Result<Response<pb::AuthResponse>, Status> {
        let verified = self.auth.verify(&request.get_ref().access_token);
        self.metrics.token_verified(
            Transport::Grpc,
            verified.as_ref().map_or_else(|e| e.label(), |_| "valid"),
        );
        let reply = match verified {
            Ok(caller) => pb::AuthResponse {
                customer_id: caller.customer.0,
                expired: false,
                amr: caller.amr.names().map(String::from).collect(),
            },
            Err(TokenError::Expired) => pb::AuthResponse {
                customer_id: 0,
                expired: true,
                amr: Vec::new(),
            },
            Err(e) => return Err(status(&e.into())),
        };
        Ok(Response::new(reply))
    }
}
