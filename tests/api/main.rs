//! One integration-test binary: every module starts the real service and speaks HTTP or
//! gRPC to it. MySQL variants run when `TEST_MYSQL_DSN` is set.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unsafe_code,
    reason = "tests fail by panicking; signals to child processes need libc"
)]

mod helpers;
mod redis_harness;

mod abuse;
mod admin;
mod architecture;
mod attacks;
mod binary;
mod cache;
mod crash;
mod database;
mod email_change;
mod email_change_throttle;
mod email_keys;
mod grpc;
mod http_basics;
mod hygiene;
mod info;
mod keys;
mod login;
mod mail_bench;
mod mfa;
mod observability;
mod openapi;
mod prometheus;
mod properties;
mod races;
mod recovery;
mod refresh;
mod reset_lockouts;
mod sessions;
mod shutdown;
mod signup;
mod stale_reads;
