//! gRPC `auth.AuthService/Auth` (SPEC section 2) with server reflection and the standard
//! health service. `Auth` is pure token verification: no database, no cache.
//!
//! `auth` implements the service, `status` maps domain errors, `observe` is the metrics and
//! tracing layer, and `server` assembles them.

mod auth;
mod observe;
pub mod pb;
mod server;
mod status;

pub use auth::AuthGrpc;
pub use observe::ObserveLayer;
pub use pb::auth_service_server::AuthServiceServer;
pub use server::{GrpcServer, server, set_not_serving};
pub use status::status;
