//! What the listeners and the servers on them are configured with.

use std::{net::IpAddr, time::Duration};

use crate::{
    domain::IpNet,
    service::operator::ApiKey,
    transport::http::{HttpSettings, server::ConnectionLimits},
};

/// The three listeners of the API (port 0 = a free one; the real port is reported).
#[derive(Debug, Clone)]
pub struct ListenSettings {
    pub http_port: u16,
    pub grpc_port: u16,
    pub prom_port: u16,
    pub bind_address: IpAddr,
}

/// The HTTP API's per-request and per-connection limits.
#[derive(Debug, Clone)]
pub struct HttpServerSettings {
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    pub body_limit: usize,
    pub request_timeout: Duration,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_concurrent_requests: usize,
    pub max_queued_requests: usize,
    pub max_queue_wait: Duration,
}

impl HttpServerSettings {
    /// The router's layers.
    pub fn api(&self) -> HttpSettings {
        HttpSettings {
            body_limit: self.body_limit,
            trusted_proxies: self.trusted_proxies.clone(),
            request_timeout: self.request_timeout,
            max_concurrent_requests: self.max_concurrent_requests,
            max_queued_requests: self.max_queued_requests,
            max_queue_wait: self.max_queue_wait,
        }
    }

    /// The accept loop's deadlines and cap.
    pub fn connections(&self) -> ConnectionLimits {
        ConnectionLimits {
            head_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
        }
    }
}

/// How the servers stop after SIGTERM.
#[derive(Debug, Clone)]
pub struct ShutdownSettings {
    /// How long requests in flight may finish.
    pub timeout: Duration,
    /// How long to keep serving while unready, so load balancers drain first.
    pub delay: Duration,
}

/// The operator API (SPEC section 14).
#[derive(Debug, Clone)]
pub struct OperatorSettings {
    /// 0 = off.
    pub port: u16,
    pub bind_address: IpAddr,
    pub api_keys: Vec<ApiKey>,
}
