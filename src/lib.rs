//! saga-account: the account and authentication service of the saga shop.
//!
//! A guided tour, from the inside out:
//! - [`domain`]: customers, validated fields and the one error type; no I/O.
//! - [`auth`] and [`account`]: the services that hold the logic (signup, login, tokens,
//!   profile reads and writes).
//! - [`store`]: the customer table behind the `CustomerStore` trait, SQLite or MySQL.
//! - [`http`] and [`grpc`]: transports that only translate to and from the services.
//! - [`config`], [`telemetry`], [`startup`]: settings, logging, and the one place that wires
//!   everything together (`Application::build`).

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod account;
pub mod auth;
pub mod breaker;
pub mod cache;
pub mod clock;
pub mod config;
pub mod domain;
pub mod grpc;
pub mod http;
pub mod idgen;
pub mod metrics;
pub mod startup;
pub mod store;
pub mod telemetry;
