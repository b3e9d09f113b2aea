//! saga-account: the account and authentication service of the saga shop.
//!
//! A guided tour, from the inside out:
//! - [`domain`]: customers, validated fields and the one error type; no I/O.
//! - [`auth`] and [`account`]: the services that hold the logic (signup, login, tokens,
//!   profile reads and writes).
//! - [`recovery`]: password reset and email verification, on [`mail`] (the outbox, its
//!   sender task, SMTP and the templates); [`admin`]: the operator API and CLI actions.
//! - [`session`]: sessions, rotating refresh tokens and the per-replica revocation set.
//! - [`store`]: the customer and session tables behind traits, SQLite or MySQL.
//! - [`cache`]: the two-tier read-through cache in front of the store; [`redis`]: the Redis
//!   client and channels it (and anything else shared by replicas) uses.
//! - [`http`] and [`grpc`]: transports that only translate to and from the services.
//! - [`readiness`]: whether this replica can serve, for `/readyz` and gRPC health.
//! - [`metrics`] (a leaf: every metric, typed labels), [`telemetry`] (log lines, traces).
//! - [`config`], [`clock`], [`idgen`], [`breaker`]: settings, time as a parameter,
//!   Sonyflake ids, fail-fast for unreachable dependencies.
//! - [`startup`]: the one place that wires everything together (`Application::build`).

pub mod account;
pub mod admin;
pub mod auth;
pub mod breaker;
pub mod cache;
pub mod clock;
pub mod config;
pub mod domain;
pub mod grpc;
pub mod http;
pub mod idgen;
pub mod keys;
pub mod mail;
pub mod metrics;
pub mod readiness;
pub mod recovery;
pub mod redis;
pub mod session;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod throttle;
