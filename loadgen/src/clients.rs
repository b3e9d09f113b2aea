//! Minimal clients over real connections: HTTP/1.1 keep-alive (one connection per worker)
//! and gRPC (a few HTTP/2 connections shared by many workers).

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, client::conn::http1::SendRequest};
use hyper_util::rt::TokioIo;
use saga_account::transport::grpc::pb::auth_service_client::AuthServiceClient;
use tonic::transport::Channel;

pub struct HttpConnection {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

impl HttpConnection {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Self {
            sender,
            host: addr.to_string(),
        })
    }

    /// One request; the status and the whole body.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Bytes>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        self.call_with(method, path, token, body, &[]).await
    }

    /// As `call`, with extra headers (e.g. `X-Forwarded-For`).
    pub async fn call_with(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Bytes>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(token) = token {
            request = request.header("authorization", format!("bearer {token}"));
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request.body(Full::new(body.unwrap_or_default()))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// `connections` HTTP/2 channels to a gRPC server.
pub async fn grpc_channels(
    addr: SocketAddr,
    connections: usize,
) -> anyhow::Result<Vec<AuthServiceClient<Channel>>> {
    let mut clients = Vec::new();
    for _ in 0..connections.max(1) {
        let channel = Channel::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect()
            .await?;
        clients.push(AuthServiceClient::new(channel));
    }
    Ok(clients)
}
