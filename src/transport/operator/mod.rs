//! The operator transports (SPEC section 14): the HTTP API on `ADMIN_PORT` and the
//! `saga-account customer …` commands. Both only translate to calls of
//! [`crate::service::operator::AdminService`].

pub mod cli;
mod http;

pub use http::router;
