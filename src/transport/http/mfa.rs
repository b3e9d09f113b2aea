//! The routes of SPEC section 16: enrolling and removing TOTP, recovery codes, and the
//! second step of a login.

use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    auth::TokenPairBody,
    error::{ApiError, Message},
    extract::{Authenticated, JsonBody, required},
    state::AppState,
};
use crate::domain::{ClientInfo, Error, FieldError, Password, Proof};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enrol_totp, remove_totp))
        .routes(routes!(confirm_totp))
        .routes(routes!(renew_recovery_codes))
        .routes(routes!(second_step))
}

/// Longest code read; anything longer is no code of ours.
const MAX_CODE_CHARS: usize = 64;

/// The second factor a body presents: `code` (TOTP) or else `recovery_code`; `None` when
/// neither is there.
pub fn proof(
    code: Option<String>,
    recovery_code: Option<String>,
) -> Result<Option<Proof>, ApiError> {
    let present = |v: Option<String>| v.filter(|v| !v.is_empty());
    let proof = match (present(code), present(recovery_code)) {
        (Some(code), _) => Proof::Totp(code),
        (None, Some(code)) => Proof::RecoveryCode(code),
        (None, None) => return Ok(None),
    };
    let text = match &proof {
        Proof::Totp(t) | Proof::RecoveryCode(t) => t,
    };
    if text.chars().count() > MAX_CODE_CHARS {
        return Err(FieldError {
            field: "code",
            reason: "too long",
        }
        .into());
    }
    Ok(Some(proof))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordRequest {
    #[schema(required = true, value_type = String, min_length = 1, max_length = 128)]
    password: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EnrolmentBody {
    /// Base32 without padding, for typing into an app.
    secret: String,
    otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    qr_svg: String,
}

#[utoipa::path(
    post,
    path = "/api/account/info/mfa/totp",
    tag = "second factor",
    summary = "Start enrolling TOTP: a new secret, not active until a code of it is confirmed",
    request_body(content = PasswordRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The secret, its `otpauth://` URI and a QR code", body = EnrolmentBody),
        (status = 400, description = "A field missing, empty or not acceptable, or a body that is not the JSON object expected: `invalid parameter`", body = Message),
        (status = 401, description = "`authentication failed` (wrong password), or no usable access token (empty body, or `token expired`/`token revoked`)"),
        (status = 404, description = "The customer of the token no longer exists: `customer not found`", body = Message),
        (status = 409, description = "`second factor already active`", body = Message),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = Message),
        (status = 429, description = "A limit was reached: `too many attempts`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "`second factor not configured` (no `MFA_ENCRYPTION_KEY` on a shared database), or `service unavailable`", body = Message)
    ),
    security(("bearer" = [])),
)]
pub async fn enrol_totp(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(req): JsonBody<PasswordRequest>,
) -> Result<Json<EnrolmentBody>, ApiError> {
    let password = required("password", req.password, Password::parse_login)?;
    let e = state.auth.enrol_totp(caller, password).await?;
    Ok(Json(EnrolmentBody {
        secret: e.secret,
        otpauth_uri: e.otpauth_uri,
        qr_svg: e.qr_svg,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ConfirmRequest {
    /// The current code of the new secret.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 64)]
    code: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RecoveryCodesBody {
    /// Shown once: each signs in once in place of a code.
    recovery_codes: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/api/account/info/mfa/totp/confirm",
    tag = "second factor",
    summary = "Confirm the new secret with a code of it: TOTP is active, and the recovery codes are shown once",
    request_body(content = ConfirmRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Active; a \"second factor added\" mail is sent", body = RecoveryCodesBody),
        (status = 400, description = "`invalid code` (wrong, or no enrolment pending), or `invalid parameter`", body = Message),
        (status = 401, description = "No usable access token: an empty body when it is missing, malformed or badly signed; `{\"msg\"}` (`token expired`, `token revoked`) otherwise"),
        (status = 409, description = "`second factor already active`", body = Message),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = Message),
        (status = 429, description = "A limit was reached: `too many attempts`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "`second factor not configured`, or `service unavailable`", body = Message)
    ),
    security(("bearer" = [])),
)]
pub async fn confirm_totp(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(req): JsonBody<ConfirmRequest>,
) -> Result<Json<RecoveryCodesBody>, ApiError> {
    let code = required("code", req.code, Ok)?;
    if code.chars().count() > MAX_CODE_CHARS {
        return Err(FieldError {
            field: "code",
            reason: "too long",
        }
        .into());
    }
    let recovery_codes = state.auth.confirm_totp(caller, &code).await?;
    Ok(Json(RecoveryCodesBody { recovery_codes }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct StepUpRequest {
    #[schema(required = true, value_type = String, min_length = 1, max_length = 128)]
    password: Option<String>,
    /// A current TOTP code (or give `recovery_code`).
    #[schema(value_type = String, max_length = 64)]
    code: Option<String>,
    /// One of the recovery codes, in place of `code`.
    #[schema(value_type = String, max_length = 64)]
    recovery_code: Option<String>,
}

#[utoipa::path(
    delete,
    path = "/api/account/info/mfa/totp",
    tag = "second factor",
    summary = "Remove TOTP and the recovery codes (the password and a code)",
    request_body(content = StepUpRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Removed (a \"second factor removed\" mail is sent); also when none was active", body = Message),
        (status = 400, description = "`invalid code`, or `invalid parameter`", body = Message),
        (status = 401, description = "`authentication failed` (wrong password), or no usable access token"),
        (status = 404, description = "The customer of the token no longer exists: `customer not found`", body = Message),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = Message),
        (status = 429, description = "A limit was reached: `too many attempts`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "`second factor not configured`, or `service unavailable`", body = Message)
    ),
    security(("bearer" = [])),
)]
pub async fn remove_totp(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(req): JsonBody<StepUpRequest>,
) -> Result<Json<Message>, ApiError> {
    let password = required("password", req.password, Password::parse_login)?;
    let proof = proof(req.code, req.recovery_code)?;
    state.auth.remove_totp(caller, password, proof).await?;
    Ok(Json(Message { msg: "ok" }))
}

#[utoipa::path(
    post,
    path = "/api/account/info/mfa/recovery-codes",
    tag = "second factor",
    summary = "A new set of recovery codes (the password and a code); the older set is void",
    request_body(content = StepUpRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The new codes, shown once", body = RecoveryCodesBody),
        (status = 400, description = "`invalid code` (wrong, or no second factor active), or `invalid parameter`", body = Message),
        (status = 401, description = "`authentication failed` (wrong password), or no usable access token"),
        (status = 404, description = "The customer of the token no longer exists: `customer not found`", body = Message),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = Message),
        (status = 429, description = "A limit was reached: `too many attempts`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "`second factor not configured`, or `service unavailable`", body = Message)
    ),
    security(("bearer" = [])),
)]
pub async fn renew_recovery_codes(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(req): JsonBody<StepUpRequest>,
) -> Result<Json<RecoveryCodesBody>, ApiError> {
    let password = required("password", req.password, Password::parse_login)?;
    let proof = proof(req.code, req.recovery_code)?;
    let recovery_codes = state
        .auth
        .renew_recovery_codes(caller, password, proof)
        .await?;
    Ok(Json(RecoveryCodesBody { recovery_codes }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SecondStepRequest {
    /// From the login's 401 `second factor required`.
    #[schema(required = true, value_type = String, min_length = 1)]
    mfa_token: Option<String>,
    /// A current TOTP code; or give `recovery_code`.
    #[schema(value_type = String, max_length = 64)]
    code: Option<String>,
    #[schema(value_type = String, max_length = 64)]
    recovery_code: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/account/auth/mfa",
    tag = "second factor",
    summary = "Finish a login that answered `second factor required`",
    request_body(content = SecondStepRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "A session started; its tokens carry `amr`", body = TokenPairBody),
        (status = 400, description = "`mfa_token` missing, or a body that is not the JSON object expected: `invalid parameter`", body = Message),
        (status = 401, description = "`invalid code` (wrong or used: counted as a failed login; or neither `code` nor `recovery_code` given: not counted), `invalid token` (unknown, used, expired or used-up `mfa_token`, or another client address), `authentication failed` (the password changed meanwhile) or `customer inactive`", body = Message),
        (status = 404, description = "The customer no longer exists: `customer not found`", body = Message),
        (status = 413, description = "Body over `HTTP_BODY_LIMIT_BYTES`", body = Message),
        (status = 429, description = "A limit was reached: `too many attempts`", body = Message, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "An unexpected failure: `server error`", body = Message),
        (status = 503, description = "`second factor not configured`, or `service unavailable`", body = Message)
    ),
)]
pub async fn second_step(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(req): JsonBody<SecondStepRequest>,
) -> Result<Json<TokenPairBody>, ApiError> {
    let token = required("mfa_token", req.mfa_token, Ok)?;
    // No code is no valid code: refused as one, but neither counted nor using the token up.
    let proof = proof(req.code, req.recovery_code)?.ok_or(Error::SecondFactorFailed)?;
    Ok(Json(
        state
            .auth
            .finish_login(&token, proof, &client)
            .await?
            .into(),
    ))
}
