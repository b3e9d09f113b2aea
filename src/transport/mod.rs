//! Transports that only translate: requests to service calls, domain errors to statuses.

pub mod grpc;
pub mod http;
pub mod operator;
pub mod settings;

pub use settings::{HttpServerSettings, ListenSettings, OperatorSettings, ShutdownSettings};
