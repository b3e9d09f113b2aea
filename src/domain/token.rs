//! What an access or refresh token says, and why one is refused. The codec that signs and
//! verifies them is `service::auth::TokenCodec`; the session service reads the claims.

use super::amr::Amr;
use super::customer::CustomerId;
use super::error::Error;
use super::random_id::{SessionId, TokenId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

/// Why a token was refused. `Expired` is only ever reported for a correctly signed token,
/// `Revoked` (decided by the session service, never by the codec) for a valid one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("invalid token")]
    Invalid,
    #[error("token expired")]
    Expired,
    #[error("token revoked")]
    Revoked,
}

impl TokenError {
    /// A short, fixed name for metrics labels.
    pub fn label(&self) -> &'static str {
        match self {
            TokenError::Invalid => "invalid",
            TokenError::Expired => "expired",
            TokenError::Revoked => "revoked",
        }
    }
}

impl From<TokenError> for Error {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Invalid => Error::TokenInvalid,
            TokenError::Expired => Error::TokenExpired,
            TokenError::Revoked => Error::TokenRevoked,
        }
    }
}

/// What a token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    pub customer: CustomerId,
    pub kind: TokenKind,
    pub exp: i64,
    pub iat: Option<i64>,
    /// The session; absent in tokens minted by the Go service.
    pub sid: Option<SessionId>,
    /// A refresh token's own id; absent in access tokens and Go-minted tokens.
    pub jti: Option<TokenId>,
    /// How the session was signed in (SPEC section 16); empty: a password, or unknown.
    pub amr: Amr,
}

impl Claims {
    /// A token as the Go service mints it: no session.
    pub fn legacy(customer: CustomerId, kind: TokenKind, exp: i64) -> Self {
        Self {
            customer,
            kind,
            exp,
            iat: None,
            sid: None,
            jti: None,
            amr: Amr::NONE,
        }
    }
}
