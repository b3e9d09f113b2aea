//! The ceilings: an empty tonic unary RPC and an empty axum handler returning a fixed small
//! JSON body, on the same stack as the service, in their own runtime, so that every figure
//! can be reported as a share of what the stack itself can do on this machine.

use std::net::SocketAddr;

use axum::{Router, routing::any};
use saga_account::transport::grpc::{
    AuthServiceServer,
    pb::{AuthPayload, AuthResponse, auth_service_server::AuthService},
};
use tonic::{Request, Response, Status};

struct EmptyAuth;

#[tonic::async_trait]
impl AuthService for EmptyAuth {
    async fn auth(&self, _: Request<AuthPayload>) -> Result<Response<AuthResponse>, Status> {
        Ok(Response::new(AuthResponse {
            customer_id: 1,
            expired: false,
            amr: Vec::new(),
        }))
    }
}

const FIXED_JSON: &str = r#"{"firstname":"Ming","lastname":"Hsu","email":"ming@example.com"}"#;

/// Starts both servers on a runtime of their own (as many worker threads as a service
/// process would have) and returns their addresses.
pub fn start() -> anyhow::Result<(SocketAddr, SocketAddr)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (http, grpc) = runtime.block_on(async {
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        anyhow::Ok((http, grpc))
    })?;
    let addrs = (http.local_addr()?, grpc.local_addr()?);
    std::thread::Builder::new()
        .name("ceilings".into())
        .spawn(move || {
            runtime.block_on(async move {
                let app = Router::new().fallback(any(|| async {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        FIXED_JSON,
                    )
                }));
                let listener = axum::serve::ListenerExt::tap_io(http, |tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                let http_server = axum::serve(listener, app);
                let incoming = tokio_stream::StreamExt::map(
                    tokio_stream::wrappers::TcpListenerStream::new(grpc),
                    |conn| {
                        conn.inspect(|tcp| {
                            let _ = tcp.set_nodelay(true);
                        })
                    },
                );
                let grpc_server = tonic::transport::Server::builder()
                    .add_service(AuthServiceServer::new(EmptyAuth))
                    .serve_with_incoming(incoming);
                let _ = tokio::join!(http_server.into_future(), grpc_server);
            });
        })?;
    Ok(addrs)
}

/// Single-thread bcrypt-10 verifications per second on this machine.
pub fn bcrypt_verifications_per_second() -> f64 {
    let hash =
        match bcrypt::hash_with_result("load-password-1", saga_account::service::auth::BCRYPT_COST)
        {
            Ok(h) => h.format_for_version(bcrypt::Version::TwoA),
            Err(_) => return 0.0,
        };
    let start = std::time::Instant::now();
    let mut done = 0u32;
    while start.elapsed() < std::time::Duration::from_secs(1) || done < 5 {
        let _ = bcrypt::verify("load-password-1", &hash);
        done += 1;
    }
    f64::from(done) / start.elapsed().as_secs_f64()
}
