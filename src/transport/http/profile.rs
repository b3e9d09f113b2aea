//! The routes of SPEC section 1 that read and replace the customer's profile: the personal
//! information (name, email) and the shipping information (address, phone number).

use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    error::{ApiError, Message},
    extract::{Authenticated, JsonBody, required},
    state::AppState,
};
use crate::domain::{Address, Email, Name, Password, PersonalInfo, PhoneNumber, ShippingInfo};

/// The routes, each with its OpenAPI paths.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_personal_info, update_personal_info))
        .routes(routes!(get_shipping_info, update_shipping_info))
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct PersonalInfoBody {
    #[schema(required = true, value_type = String, min_length = 1, max_length = 50, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    firstname: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, max_length = 50, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    lastname: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, max_length = 320, format = Email)]
    email: Option<String>,
}

/// The body of `PUT /info/person`: the personal information, and the password when the
/// email changes and `EMAIL_CHANGE_REQUIRES_PASSWORD` is set (SPEC rule 15.2).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PersonalInfoUpdate {
    #[schema(required = true, value_type = String, min_length = 1, max_length = 50, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    firstname: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, max_length = 50, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    lastname: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, max_length = 320, format = Email)]
    email: Option<String>,
    /// Needed, when `EMAIL_CHANGE_REQUIRES_PASSWORD` is `true`, for a changed email
    /// (missing or wrong: 401 `authentication failed`); ignored otherwise.
    #[schema(value_type = Option<String>)]
    current_password: Option<String>,
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

#[utoipa::path(
    get,
    path = "/api/account/info/person",
    tag = "info",
    summary = "The customer's name and email",
    responses(
        (status = 200, description = "The personal information", body = PersonalInfoBody),
        (status = 401, description = "No usable access token: an empty body when it is missing, malformed or badly signed; `{\"msg\"}` (`token expired`, `token revoked`) otherwise"),
        (status = 404, description = "The customer of the token no longer exists: `customer not found`", body = Message),
        (status = 503, description = "The database is unreachable, the hashing queue is full, the request timed out or too many are waiting: `service unavailable`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait")))
    ),
    security(("bearer" = [])),
)]
pub async fn get_personal_info(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<PersonalInfoBody>, ApiError> {
    Ok(Json(
        state.account.personal_info(caller.customer).await?.into(),
    ))
}

#[utoipa::path(
    put,
    path = "/api/account/info/person",
    tag = "info",
    summary = "Replace the name and email",
    request_body(content = PersonalInfoUpdate, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored: `{\"msg\":\"ok\"}`; a changed email is unverified, and the old address gets a notice with a revert link", body = Message),
        (status = 400, description = "A field missing, empty or not acceptable, or a body that is not the JSON object expected: `invalid parameter`", body = Message),
        (status = 400, description = "`duplicate entry`: the email is taken", body = Message),
        (status = 401, description = "No usable access token: an empty body when it is missing, malformed or badly signed; `{\"msg\"}` (`token expired`, `token revoked`) otherwise; `authentication failed` when `EMAIL_CHANGE_REQUIRES_PASSWORD` is set and the email changes without the right `current_password`"),
        (status = 404, description = "The customer of the token no longer exists: `customer not found`", body = Message),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = Message),
        (status = 429, description = "Too many wrong passwords for this customer: `too many attempts`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "An unexpected failure: `server error`", body = Message),
        (status = 503, description = "The database is unreachable, the hashing queue is full, the request timed out or too many are waiting: `service unavailable`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait")))
    ),
    security(("bearer" = [])),
)]
pub async fn update_personal_info(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(req): JsonBody<PersonalInfoUpdate>,
) -> Result<Json<Message>, ApiError> {
    let info = PersonalInfo {
        first_name: required("firstname", req.firstname, Name::parse)?,
        last_name: required("lastname", req.lastname, Name::parse)?,
        email: required("email", req.email, Email::parse)?,
    };
    // A value that cannot be a password is a wrong one (401 when it is needed), not a 400.
    let password = req
        .current_password
        .map(|p| Password::parse_login(p).map_err(drop));
    state
        .account
        .update_personal_info(caller.customer, info, password)
        .await?;
    Ok(Json(Message { msg: "ok" }))
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShippingInfoBody {
    #[schema(required = true, value_type = String, min_length = 1, max_length = 65535, pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$")]
    address: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, max_length = 20, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    phone_number: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/account/info/shipping",
    tag = "info",
    summary = "The customer's address and phone number",
    responses(
        (status = 200, description = "The shipping information", body = ShippingInfoBody),
        (status = 401, description = "No usable access token: an empty body when it is missing, malformed or badly signed; `{\"msg\"}` (`token expired`, `token revoked`) otherwise"),
        (status = 404, description = "The customer of the token no longer exists: `customer not found`", body = Message),
        (status = 503, description = "The database is unreachable, the hashing queue is full, the request timed out or too many are waiting: `service unavailable`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait")))
    ),
    security(("bearer" = [])),
)]
pub async fn get_shipping_info(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<ShippingInfoBody>, ApiError> {
    Ok(Json(
        state.account.shipping_info(caller.customer).await?.into(),
    ))
}

#[utoipa::path(
    put,
    path = "/api/account/info/shipping",
    tag = "info",
    summary = "Replace the address and phone number",
    request_body(content = ShippingInfoBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored: `{\"msg\":\"ok\"}`", body = Message),
        (status = 400, description = "A field missing, empty or not acceptable, or a body that is not the JSON object expected: `invalid parameter`", body = Message),
        (status = 401, description = "No usable access token: an empty body when it is missing, malformed or badly signed; `{\"msg\"}` (`token expired`, `token revoked`) otherwise"),
        (status = 404, description = "The customer of the token no longer exists: `customer not found`", body = Message),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = Message),
        (status = 500, description = "An unexpected failure: `server error`", body = Message),
        (status = 503, description = "The database is unreachable, the hashing queue is full, the request timed out or too many are waiting: `service unavailable`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait")))
    ),
    security(("bearer" = [])),
)]
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
