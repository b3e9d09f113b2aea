//! The SQL stores. MySQL and SQLite run the same statements (both take `?` placeholders);
//! one macro per table family writes both implementations so that they cannot drift apart.
//! What differs is passed in: how a write transaction starts, how a row is locked, how an
//! id is bound.
//!
//! - `backend`: the store types, their pools and breaker, opening and migrations;
//! - `customers`, `sessions`, `outbox`, `recovery`, `keys`: one store trait each;
//! - `email_change`: the part of `recovery` that records and reverts email changes.

mod backend;
mod collation;
mod customers;
mod email_change;
mod email_key;
mod feed;
mod keys;
mod outbox;
mod recovery;
mod sessions;

pub use backend::{MySqlStore, PoolLimits, SqliteStore};
