//! What can go wrong in storage, and what that means for the caller.

use crate::domain::{Error, InternalError, Unavailable};

/// What can go wrong in storage, by what the caller does about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The email or phone number belongs to another customer.
    #[error("duplicate entry")]
    Duplicate,
    /// The primary key is taken: two generators produced one ID. The caller retries with a new one.
    #[error("customer id already taken")]
    IdTaken,
    /// The database cannot be reached right now.
    #[error("database unavailable")]
    Unavailable(#[source] InternalError),
    #[error("database error")]
    Other(#[source] InternalError),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate => Error::DuplicateEntry,
            StoreError::Unavailable(cause) => Error::Unavailable(Unavailable::Database(cause)),
            e @ StoreError::IdTaken => Error::internal(e),
            StoreError::Other(cause) => Error::Internal(cause),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
