//! Route handlers: read the request, call a service, shape the answer. Nothing else.

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};

use super::{
    AppState,
    error::{ApiError, Message},
    extract::{Authenticated, JsonBody},
};
use crate::{
    auth::{Signup, TokenPair},
    domain::{
        Address, ClientInfo, Email, FieldError, Invalid, Name, Password, PersonalInfo, PhoneNumber,
        ShippingInfo,
    },
};

/// A required field: absent, `null` and `""` are all "missing".
pub(super) fn required<T>(
    field: &'static str,
    value: Option<String>,
    parse: impl FnOnce(String) -> Result<T, FieldError>,
) -> Result<T, ApiError> {
    match value {
        Some(v) if !v.is_empty() => Ok(parse(v)?),
        _ => Err(Invalid::Missing(field).into()),
    }
}

#[derive(Serialize)]
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

#[derive(Deserialize)]
pub struct SignupRequest {
    password: Option<String>,
    firstname: Option<String>,
    lastname: Option<String>,
    email: Option<String>,
    address: Option<String>,
    phone_number: Option<String>,
}

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

#[derive(Deserialize)]
pub struct LoginRequest {
    email: Option<String>,
    password: Option<String>,
}

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

#[derive(Deserialize)]
pub struct RefreshRequest {
    refresh_token: Option<String>,
}

pub async fn refresh(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(req): JsonBody<RefreshRequest>,
) -> Result<Json<TokenPairBody>, ApiError> {
    let token = required("refresh_token", req.refresh_token, Ok)?;
    Ok(Json(state.auth.refresh(&token, &client).await?.into()))
}

#[derive(Serialize, Deserialize)]
pub struct PersonalInfoBody {
    firstname: Option<String>,
    lastname: Option<String>,
    email: Option<String>,
}

impl From<PersonalInfo> for PersonalInfoBody {
    fn from(info: PersonalInfo) -> Self {
        Self {
            firstname: Some(info.first_name.into_inner()),
            lastname: Some(info.last_name.into_inner()),
            email: Some(info.email.into_inner()),
        }
    }
}

impl From<ShippingInfo> for ShippingInfoBody {
    fn from(info: ShippingInfo) -> Self {
        Self {
            address: Some(info.address.into_inner()),
            phone_number: Some(info.phone_number.into_inner()),
        }
    }
}

pub async fn get_personal_info(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<PersonalInfoBody>, ApiError> {
    Ok(Json(
        state.account.personal_info(caller.customer).await?.into(),
    ))
}

pub async fn update_personal_info(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(req): JsonBody<PersonalInfoBody>,
) -> Result<Json<Message>, ApiError> {
    let info = PersonalInfo {
        first_name: required("firstname", req.firstname, Name::parse)?,
        last_name: required("lastname", req.lastname, Name::parse)?,
        email: required("email", req.email, Email::parse)?,
    };
    state
        .account
        .update_personal_info(caller.customer, info)
        .await?;
    Ok(Json(Message { msg: "ok" }))
}

#[derive(Serialize, Deserialize)]
pub struct ShippingInfoBody {
    address: Option<String>,
    phone_number: Option<String>,
}

pub async fn get_shipping_info(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<ShippingInfoBody>, ApiError> {
    Ok(Json(
        state.account.shipping_info(caller.customer).await?.into(),
    ))
}

pub async fn update_shipping_info(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(req): JsonBody<ShippingInfoBody>,
) -> Result<Json<Message>, ApiError> {
    let info = ShippingInfo {
        address: required("address", req.address, Address::parse)?,
        phone_number: required("phone_number", req.phone_number, PhoneNumber::parse)?,
    };
    state
        .account
        .update_shipping_info(caller.customer, info)
        .await?;
    Ok(Json(Message { msg: "ok" }))
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
