//! Storage: the database behind the store traits, the two-tier cache in front of it, and
//! the Redis client that replicas share. Imports only [`crate::domain`] and [`crate::metrics`].

pub mod breaker;
pub mod cache;
pub mod redis;
pub mod store;
