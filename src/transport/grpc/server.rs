//! The gRPC server as a value: `Auth`, the health service and reflection behind the
//! observability layer, built from the services like `http::router`.

use std::future::Future;

use tokio::{net::TcpListener, sync::watch};
use tonic::transport::server::Router;
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::layer::util::{Identity, Stack};

use super::{
    auth::AuthGrpc,
    observe::ObserveLayer,
    pb::{self, auth_service_server::AuthServiceServer},
};
use crate::{metrics::Metrics, service::auth::AuthService};

pub struct GrpcServer {
    router: Router<Stack<ObserveLayer, Identity>>,
    health: HealthReporter,
}

/// `auth.AuthService` (SERVING until shutdown: `Auth` needs no database), health and
/// reflection (v1 and v1alpha).
/// Largest request message and request head of the gRPC server.
pub const GRPC_MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Concurrent calls on one HTTP/2 connection.
pub const GRPC_MAX_STREAMS_PER_CONNECTION: u32 = 1024;

pub async fn server(auth: AuthService, metrics: Metrics) -> anyhow::Result<GrpcServer> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<AuthServiceServer<AuthGrpc>>().await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    // Limits set on purpose (README "gRPC"): an `Auth` request is one token (at most 4 KiB
    // verifies), so 64 KiB messages and 16 KiB heads are ample; streams per connection are bounded so that one client
    // cannot hold every task; HTTP/2 pings find dead peers (a load balancer that vanished)
    // within 40 s. No server-side call timeout: `Auth` never waits on anything, and a
    // timer per call would cost the hot path; callers set `grpc-timeout`.
    let router = tonic::transport::Server::builder()
        .max_concurrent_streams(GRPC_MAX_STREAMS_PER_CONNECTION)
        .http2_max_header_list_size(16 * 1024)
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
        .layer(ObserveLayer::new(metrics.clone()))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            AuthServiceServer::new(AuthGrpc::new(auth, metrics))
                .max_decoding_message_size(GRPC_MAX_MESSAGE_BYTES),
        );
    Ok(GrpcServer { router, health })
}

impl GrpcServer {
    /// Keeps the health of the whole server (`""`) in step with readiness until the sender
    /// goes away.
    pub fn follow_readiness(&self, mut ready: watch::Receiver<bool>) {
        let health = self.health.clone();
        tokio::spawn(async move {
            loop {
                let status = if *ready.borrow_and_update() {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                health.set_service_status("", status).await;
                if ready.changed().await.is_err() {
                    return;
                }
            }
        });
    }

    /// A handle that turns every service NOT_SERVING when shutdown begins.
    pub fn health(&self) -> HealthReporter {
        self.health.clone()
    }

    /// Serves on `listener` until `stop` completes, then lets calls in flight finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        stop: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        let incoming = tokio_stream::StreamExt::map(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            |conn| {
                conn.inspect(|tcp| {
                    let _ = tcp.set_nodelay(true);
                })
            },
        );
        self.router
            .serve_with_incoming_shutdown(incoming, stop)
            .await
    }
}

/// Shutdown has begun: every service says NOT_SERVING.
pub async fn set_not_serving(health: &HealthReporter) {
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    health
        .set_not_serving::<AuthServiceServer<AuthGrpc>>()
        .await;
}
