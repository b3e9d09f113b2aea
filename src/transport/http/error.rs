//! Every error of the HTTP API becomes a status and a body here, and only here.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::domain::{Error, ErrorChain, FieldError, Invalid, Unavailable};

#[derive(Serialize, utoipa::ToSchema)]
pub struct Message {
    #[schema(value_type = String)]
    pub msg: &'static str,
}

/// A 401 of a login: `{"msg"}`, and, when the password was right for a customer with a
/// second factor (SPEC section 16), the `mfa_token` and `methods` of the second step; a
/// caller written for the Go service sees a failed login either way.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SecondFactorRequired {
    /// `second factor required`
    #[schema(value_type = String)]
    pub msg: &'static str,
    /// Finishes the login at `POST /auth/mfa`: single use, bound to the client address.
    /// Only in the answer `second factor required`; the other 401s are `{"msg"}` alone.
    #[schema(required = false)]
    pub mfa_token: String,
    /// What the second step accepts: `totp`, `recovery_code`. Only with `mfa_token`.
    #[schema(value_type = Vec<String>, required = false)]
    pub methods: Vec<&'static str>,
}

/// What a handler or extractor can fail with.
#[derive(Debug)]
pub enum ApiError {
    Domain(Error),
    BodyTooLarge,
    NotFound,
    MethodNotAllowed,
    /// Missing or unusable credentials on an authenticated route: 401 with an empty body, as
    /// the Go middleware answers (an expired token is `Domain(TokenExpired)` instead).
    Unauthorized,
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Domain(e)
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::Domain(e.into())
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::Domain(e.into())
    }
}

pub fn message(status: StatusCode, msg: &'static str) -> Response {
    (status, Json(Message { msg })).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, msg) = match self {
            ApiError::BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
            ApiError::Unauthorized => return StatusCode::UNAUTHORIZED.into_response(),
            ApiError::Domain(e) => match e {
                Error::InvalidParameter(detail) => {
                    tracing::debug!(%detail, "invalid parameter");
                    (StatusCode::BAD_REQUEST, "invalid parameter")
                }
                Error::DuplicateEntry => (StatusCode::BAD_REQUEST, "duplicate entry"),
                Error::CustomerNotFound => (StatusCode::NOT_FOUND, "customer not found"),
                Error::CustomerInactive => (StatusCode::UNAUTHORIZED, "customer inactive"),
                Error::AuthenticationFailed => (StatusCode::UNAUTHORIZED, "authentication failed"),
                Error::TokenInvalid => (StatusCode::UNAUTHORIZED, "invalid token"),
                Error::TokenExpired => (StatusCode::UNAUTHORIZED, "token expired"),
                Error::TokenRevoked => (StatusCode::UNAUTHORIZED, "token revoked"),
                Error::SessionNotFound => (StatusCode::NOT_FOUND, "session not found"),
                Error::PasswordTooWeak => (StatusCode::BAD_REQUEST, "password too weak"),
                Error::InvalidOrExpiredToken => {
                    (StatusCode::BAD_REQUEST, "invalid or expired token")
                }
                Error::SecondFactorRequired { mfa_token, methods } => {
                    let body = SecondFactorRequired {
                        msg: "second factor required",
                        mfa_token,
                        methods,
                    };
                    return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
                }
                Error::InvalidCode => (StatusCode::BAD_REQUEST, "invalid code"),
                Error::SecondFactorFailed => (StatusCode::UNAUTHORIZED, "invalid code"),
                Error::SecondFactorAlreadyActive => {
                    (StatusCode::CONFLICT, "second factor already active")
                }
                Error::SecondFactorNotConfigured => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "second factor not configured",
                ),
                Error::TooManyAttempts { retry_after } => {
                    let mut response = message(StatusCode::TOO_MANY_REQUESTS, "too many attempts");
                    // Whole seconds, rounded up: a client that waits that long is let in.
                    let secs = retry_after.as_millis().div_ceil(1000).max(1);
                    if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                        response.headers_mut().insert(header::RETRY_AFTER, value);
                    }
                    return response;
                }
                Error::Unavailable(why) => {
                    // One line per shed request would flood the log just when it matters.
                    if matches!(why, Unavailable::Overloaded) {
                        tracing::debug!(reason = %why, "service unavailable");
                    } else {
                        tracing::warn!(reason = %why, "service unavailable");
                    }
                    let mut response =
                        message(StatusCode::SERVICE_UNAVAILABLE, "service unavailable");
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                    return response;
                }
                Error::Internal(cause) => {
                    tracing::error!(error = %ErrorChain(cause.as_ref()), "internal error");
                    (StatusCode::INTERNAL_SERVER_ERROR, "server error")
                }
            },
        };
        message(status, msg)
    }
}
