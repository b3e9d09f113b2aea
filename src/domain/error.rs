//! The one error type of the service, by meaning. HTTP and gRPC each map it in one place.

use std::fmt;

use super::fields::FieldError;

/// A cause that must be logged but never shown to a client.
pub type InternalError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed, missing or out-of-range input. The detail is for logs only.
    #[error("invalid parameter: {0}")]
    InvalidParameter(#[source] Invalid),
    /// The email or phone number is already used by another customer.
    #[error("duplicate entry")]
    DuplicateEntry,
    #[error("customer not found")]
    CustomerNotFound,
    #[error("customer inactive")]
    CustomerInactive,
    /// Wrong password.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// Bad signature, malformed, wrong algorithm, wrong kind of token, no `exp`.
    #[error("invalid token")]
    TokenInvalid,
    /// Correctly signed, but its `exp` has passed.
    #[error("token expired")]
    TokenExpired,
    /// Correctly signed and unexpired, but its session was revoked or has ended.
    #[error("token revoked")]
    TokenRevoked,
    /// No live session of this customer has that id.
    #[error("session not found")]
    SessionNotFound,
    /// A new password scored below `PASSWORD_MIN_SCORE`.
    #[error("password too weak")]
    PasswordTooWeak,
    /// A reset or verification token that is malformed, unknown, used, expired, or no
    /// longer matches the customer's email.
    #[error("invalid or expired token")]
    InvalidOrExpiredToken,
    /// The password was right and the customer has a second factor: no session yet; the
    /// `mfa_token` finishes the login at `POST /auth/mfa` (SPEC section 16).
    #[error("second factor required")]
    SecondFactorRequired {
        mfa_token: String,
        methods: Vec<&'static str>,
    },
    /// A wrong, used or missing code where a signed-in customer proves the factor (400).
    #[error("invalid code")]
    InvalidCode,
    /// A wrong or used code at the second step of a login (401).
    #[error("invalid code")]
    SecondFactorFailed,
    #[error("second factor already active")]
    SecondFactorAlreadyActive,
    /// No `MFA_ENCRYPTION_KEY` on a shared database: secrets can be neither sealed nor read.
    #[error("second factor not configured")]
    SecondFactorNotConfigured,
    /// A limit was reached (login failures, signups per address); try again later.
    #[error("too many attempts")]
    TooManyAttempts { retry_after: std::time::Duration },
    /// A dependency is down or a bounded queue is full: retrying later may succeed.
    #[error("service unavailable: {0}")]
    Unavailable(Unavailable),
    /// Anything else; the cause is logged, the client sees a generic message.
    #[error("internal error")]
    Internal(#[source] InternalError),
}

/// What was wrong with the input; logged, never sent to the client.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    /// A field was present but not acceptable.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// A required field was absent, `null` or empty.
    #[error("{0}: missing")]
    Missing(&'static str),
    /// The body could not be read or is not the JSON expected.
    #[error("malformed body: {0}")]
    Body(String),
}

impl From<Invalid> for Error {
    fn from(e: Invalid) -> Self {
        Error::InvalidParameter(e)
    }
}

impl From<FieldError> for Error {
    fn from(e: FieldError) -> Self {
        Error::InvalidParameter(Invalid::Field(e))
    }
}

/// Why the service cannot answer right now.
#[derive(Debug)]
pub enum Unavailable {
    Database(InternalError),
    HashPoolFull,
    ShuttingDown,
    /// More HTTP requests than the service handles at once are already waiting.
    Overloaded,
    /// The request ran longer than `HTTP_REQUEST_TIMEOUT_SECONDS`.
    TimedOut,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::Database(cause) => write!(f, "database unreachable: {cause}"),
            Unavailable::HashPoolFull => f.write_str("password hashing queue is full"),
            Unavailable::ShuttingDown => f.write_str("shutting down"),
            Unavailable::Overloaded => f.write_str("too many requests waiting"),
            Unavailable::TimedOut => f.write_str("request timed out"),
        }
    }
}

impl Error {
    /// A short, fixed name for metrics labels.
    pub fn label(&self) -> &'static str {
        match self {
            Error::InvalidParameter(_) => "invalid_parameter",
            Error::DuplicateEntry => "duplicate_entry",
            Error::CustomerNotFound => "customer_not_found",
            Error::CustomerInactive => "customer_inactive",
            Error::AuthenticationFailed => "authentication_failed",
            Error::TokenInvalid => "invalid_token",
            Error::TokenExpired => "token_expired",
            Error::TokenRevoked => "token_revoked",
            Error::SessionNotFound => "session_not_found",
            Error::PasswordTooWeak => "password_too_weak",
            Error::InvalidOrExpiredToken => "invalid_or_expired_token",
            Error::SecondFactorRequired { .. } => "second_factor_required",
            Error::InvalidCode | Error::SecondFactorFailed => "invalid_code",
            Error::SecondFactorAlreadyActive => "second_factor_already_active",
            Error::SecondFactorNotConfigured => "second_factor_not_configured",
            Error::TooManyAttempts { .. } => "too_many_attempts",
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal",
        }
    }

    pub fn internal(cause: impl Into<InternalError>) -> Self {
        Error::Internal(cause.into())
    }
}

/// Displays an error with its sources: "a: b: c". Internal causes are logged with it, once,
/// where they end (the HTTP edge, the mail sender).
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}
