//! The services that hold the logic. Imports storage, metrics and domain; never a transport.

pub mod account;
pub mod auth;
pub mod idgen;
pub mod kept;
pub mod keys;
pub mod mail;
pub mod mfa;
pub mod operator;
pub mod readiness;
pub mod recovery;
pub mod session;
pub mod throttle;
