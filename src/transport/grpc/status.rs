//! The one place where a domain error becomes a gRPC status.

use tonic::Status;

use crate::domain::Error;

pub fn status(e: &Error) -> Status {
    match e {
        // Fix (SPEC section 2): the Go service said INTERNAL "internal error: invalid token".
        Error::TokenInvalid => Status::unauthenticated("invalid token"),
        Error::TokenExpired => Status::unauthenticated("token expired"),
        Error::TokenRevoked => Status::unauthenticated("token revoked"),
        Error::SessionNotFound => Status::not_found("session not found"),
        Error::PasswordTooWeak => Status::invalid_argument("password too weak"),
        Error::InvalidOrExpiredToken => Status::invalid_argument("invalid or expired token"),
        Error::TooManyAttempts { .. } => Status::resource_exhausted("too many attempts"),
        Error::InvalidParameter(_) => Status::invalid_argument("invalid parameter"),
        Error::DuplicateEntry => Status::already_exists("duplicate entry"),
        Error::CustomerNotFound => Status::not_found("customer not found"),
        Error::CustomerInactive => Status::permission_denied("customer inactive"),
        Error::AuthenticationFailed => Status::unauthenticated("authentication failed"),
        Error::SecondFactorRequired { .. } => Status::unauthenticated("second factor required"),
        Error::InvalidCode => Status::invalid_argument("invalid code"),
        Error::SecondFactorFailed => Status::unauthenticated("invalid code"),
        Error::SecondFactorAlreadyActive => Status::already_exists("second factor already active"),
        Error::SecondFactorNotConfigured => Status::unavailable("second factor not configured"),
        Error::Unavailable(_) => Status::unavailable("service unavailable"),
        Error::Internal(_) => Status::internal("server error"),
    }
}
