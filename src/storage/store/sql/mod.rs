//! The SQL stores. SQLite, MySQL and PostgreSQL run the same statements, written once with
//! `?` placeholders (numbered `$1`, `$2`, … for PostgreSQL at compile time); one macro per
//! table family writes the three implementations so that they cannot drift apart. What
//! differs is passed in by `for_each_dialect`: how a write transaction starts, how a row is
//! locked, how an id is bound, how a column is compared with an email.
//!
//! - `backend`: the store types, their pools and breaker, opening and migrations;
//! - `dialect`: placeholder numbering;
//! - `postgres`, `collation`: what only one backend has (opening PostgreSQL; the keys of
//!   addresses on PostgreSQL and MySQL);
//! - `customers`, `sessions`, `outbox`, `recovery`, `keys`, `mfa`: one store trait each;
//! - `email_change`: the part of `recovery` that records and reverts email changes.

mod backend;
mod collation;
mod customers;
mod dialect;
mod email_change;
mod email_key;
mod feed;
mod keys;
mod mfa;
mod outbox;
mod postgres;
mod recovery;
mod sessions;

pub use backend::{MySqlStore, PgStore, PoolLimits, SqliteStore};
