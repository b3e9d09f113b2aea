//! saga-account: the account and authentication service of the saga shop.
//!
//! The folders are the layers, and each imports only the ones below it:
//! - [`app`]: the one place that wires everything from the settings (`Application::build`).
//! - [`config`]: reads and validates the settings of every module (defaults, `config.yml`,
//!   environment).
//! - [`transport`]: HTTP, gRPC and the operator API and CLI; they only translate.
//! - [`service`]: the logic (auth, sessions, account, recovery, mail, keys, throttling,
//!   the operator's actions, readiness).
//! - [`storage`]: the store traits and their SQL backends, the two-tier cache, Redis.
//! - [`metrics`] and [`telemetry`]: every metric with typed labels; log lines and traces.
//! - [`domain`]: customers, sessions, validated fields, the one error type, the clock; std,
//!   serde and thiserror only.

// The library, unlike the tools and tests of the workspace, must not panic on an index or
// hold a lock across an await (kanidm's lib denies the same).
#![deny(clippy::indexing_slicing, clippy::await_holding_lock)]

pub mod app;
pub mod config;
pub mod domain;
pub mod metrics;
pub mod service;
pub mod storage;
pub mod telemetry;
pub mod transport;
