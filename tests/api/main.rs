//! One integration-test binary: every module starts the real service and speaks HTTP or
//! gRPC to it. MySQL variants run when `TEST_MYSQL_DSN` is set.

mod helpers;
mod redis_harness;

mod binary;
mod cache;
mod database;
mod grpc;
mod http_basics;
mod info;
mod login;
mod observability;
mod refresh;
mod shutdown;
mod signup;
