//! The routes of SPEC section 1 that start a session: sign-up, login, and the refresh of a
//! token pair.

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    error::{ApiError, Message, SecondFactorRequired},
    extract::{JsonBody, required},
    state::AppState,
};
use crate::{
    domain::{Address, ClientInfo, Email, Name, Password, PersonalInfo, PhoneNumber, ShippingInfo},
    service::auth::{Signup, TokenPair},
};

/// The routes, each with its OpenAPI path.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(refresh))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenPairBody {
    refresh_token: String,
    access_token: String,
}

impl From<TokenPair> for TokenPairBody {
    fn from(p: TokenPair) -> Self {
        Self {
            refresh_token: p.refresh_token,
            access_token: p.access_token,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SignupRequest {
    #[schema(required = true, value_type = String, min_length = 8, max_length = 128)]
    password: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, max_length = 50, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    firstname: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, max_length = 50, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    lastname: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, max_length = 320, format = Email)]
    email: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, max_length = 65535, pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$")]
    address: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, max_length = 20, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    phone_number: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/account/auth/signup",
    tag = "auth",
    summary = "Sign up",
    request_body(content = SignupRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The account exists; a session started", body = TokenPairBody),
        (status = 400, description = "A field missing, empty or not acceptable, or a body that is not the JSON object expected: `invalid parameter`", body = Message),
        (status = 400, description = "`duplicate entry` (email or phone number taken) or `password too weak`", body = Message),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = Message),
        (status = 429, description = "A limit was reached: `too many attempts`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "An unexpected failure: `server error`", body = Message),
        (status = 503, description = "The database is unreachable, the hashing queue is full, the request timed out or too many are waiting: `service unavailable`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait")))
    ),
)]
pub async fn signup(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(req): JsonBody<SignupRequest>,
) -> Result<(StatusCode, Json<TokenPairBody>), ApiError> {
    let signup = Signup {
        password: required("password", req.password, Password::parse)?,
        personal: PersonalInfo {
            first_name: required("firstname", req.firstname, Name::parse)?,
            last_name: required("lastname", req.lastname, Name::parse)?,
            email: required("email", req.email, Email::parse)?,
        },
        shipping: ShippingInfo {
            address: required("address", req.address, Address::parse)?,
            phone_number: required("phone_number", req.phone_number, PhoneNumber::parse)?,
        },
    };
    let pair = state.auth.signup(signup, &client).await?;
    Ok((StatusCode::CREATED, Json(pair.into())))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    #[schema(required = true, value_type = String, min_length = 1, max_length = 320, format = Email)]
    email: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, max_length = 128)]
    password: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/account/auth/login",
    tag = "auth",
    summary = "Log in",
    request_body(content = LoginRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "A session started", body = TokenPairBody),
        (status = 400, description = "A field missing, empty or not acceptable, or a body that is not the JSON object expected: `invalid parameter`", body = Message),
        (status = 401, description = "`authentication failed` (wrong password) or `customer inactive`; or, for a right password of a customer with a second factor, `second factor required` with an `mfa_token` for `POST /auth/mfa` (no session started)", body = SecondFactorRequired),
        (status = 404, description = "`customer not found` (unknown email, unless `LOGIN_UNIFORM_ERRORS`)", body = Message),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = Message),
        (status = 429, description = "A limit was reached: `too many attempts`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "An unexpected failure: `server error`", body = Message),
        (status = 503, description = "The database is unreachable, the hashing queue is full, the request timed out or too many are waiting: `service unavailable`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait")))
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(req): JsonBody<LoginRequest>,
) -> Result<Json<TokenPairBody>, ApiError> {
    let email = required("email", req.email, Email::parse)?;
    let password = required("password", req.password, Password::parse_login)?;
    Ok(Json(
        state.auth.login(email, password, &client).await?.into(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RefreshRequest {
    #[schema(required = true, value_type = String, min_length = 1)]
    refresh_token: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/account/auth/refresh",
    tag = "auth",
    summary = "A new token pair for a refresh token",
    request_body(content = RefreshRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The session goes on", body = TokenPairBody),
        (status = 400, description = "A field missing, empty or not acceptable, or a body that is not the JSON object expected: `invalid parameter`", body = Message),
        (status = 401, description = "`invalid token`, `token expired`, `token revoked` or `customer inactive`", body = Message),
        (status = 404, description = "The customer of the token no longer exists: `customer not found`", body = Message),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = Message),
        (status = 503, description = "The database is unreachable, the hashing queue is full, the request timed out or too many are waiting: `service unavailable`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait")))
    ),
)]
pub async fn refresh(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(req): JsonBody<RefreshRequest>,
) -> Result<Json<TokenPairBody>, ApiError> {
    let token = required("refresh_token", req.refresh_token, Ok)?;
    Ok(Json(state.auth.refresh(&token, &client).await?.into()))
}
