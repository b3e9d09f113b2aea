//! Reading a request: the JSON body (whatever the `Content-Type` says), its required fields,
//! and the authenticated customer.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;

use super::{error::ApiError, state::AppState};
use crate::{
    domain::{Error, FieldError, Invalid},
    metrics::Transport,
    service::auth::{TokenError, Verified},
};

/// A JSON body read regardless of `Content-Type`: the shop's own documentation calls these
/// routes with `curl --data`, which says `application/x-www-form-urlencoded`.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::BodyTooLarge
            } else {
                Invalid::Body(rejection.body_text()).into()
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| Invalid::Body(e.to_string()).into())
    }
}

/// A required field: absent, `null` and `""` are all "missing".
pub fn required<T>(
    field: &'static str,
    value: Option<String>,
    parse: impl FnOnce(String) -> Result<T, FieldError>,
) -> Result<T, ApiError> {
    match value {
        Some(v) if !v.is_empty() => Ok(parse(v)?),
        _ => Err(Invalid::Missing(field).into()),
    }
}

/// The raw body (read whole, within the body limit), for routes whose body is optional.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::BodyTooLarge
                } else {
                    Invalid::Body(rejection.body_text()).into()
                }
            })
    }
}

/// The caller whose valid, unrevoked access token came in `Authorization: <scheme> <token>`.
pub struct Authenticated(pub Verified);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .ok_or(ApiError::Unauthorized)?;
        let verified = state.auth.verify(token);
        state.metrics.token_verified(
            Transport::Http,
            verified.as_ref().map_or_else(|e| e.label(), |_| "valid"),
        );
        match verified {
            Ok(caller) => Ok(Authenticated(caller)),
            // An invalid token gets the Go middleware's empty 401; the others say why.
            Err(TokenError::Invalid) => Err(ApiError::Unauthorized),
            Err(e) => Err(Error::from(e).into()),
        }
    }
}

/// `Authenticated` when the request has an `Authorization` header, `None` when it has none
/// (a route that also takes its token another way).
pub struct MaybeAuthenticated(pub Option<Verified>);

impl FromRequestParts<AppState> for MaybeAuthenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(MaybeAuthenticated(None));
        }
        let Authenticated(caller) = Authenticated::from_request_parts(parts, state).await?;
        Ok(MaybeAuthenticated(Some(caller)))
    }
}

/// The Go middleware splits the header on single spaces and wants exactly two words; the
/// scheme word is not checked.
fn bearer_token(header: &str) -> Option<&str> {
    let mut words = header.split(' ');
    match (words.next(), words.next(), words.next()) {
        (Some(_scheme), Some(token), None) if !token.is_empty() => Some(token),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_must_be_exactly_two_words() {
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("Token abc"), Some("abc"));
        for bad in [
            "",
            "abc",
            "bearer ",
            "bearer  abc",
            "bearer abc def",
            " abc x",
        ] {
            assert_eq!(bearer_token(bad), None, "{bad:?}");
        }
    }
}
