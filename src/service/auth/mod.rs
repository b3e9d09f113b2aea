//! Signup, login, token refresh and verification, logout, password change and account
//! deletion: everything that involves a password or a token.
//!
//! - `credentials`: the flows that check or set a password;
//! - `mfa`: the second step of a login and the step-up of sensitive changes; `enrolment`:
//!   adding and removing TOTP and recovery codes (SPEC section 16);
//! - `sessions`: refresh, logout and the session routes, on the session service;
//! - `token`: the JWT codec; `password`: the hashing pool; `secret`: a generated secret.

mod credentials;
mod enrolment;
mod guard;
mod mfa;
mod password;
mod secret;
mod sessions;
mod token;

use std::sync::Arc;

pub use password::{
    Algorithm, Argon2Params, BCRYPT_COST, HashPolicy, PasswordHasher, PasswordSettings,
};
pub use secret::jwt_secret;
pub use token::TokenCodec;

pub use crate::domain::{Claims, TokenError, TokenKind};

use crate::{
    domain::clock::Clock,
    domain::{Amr, CustomerId, Error, Password, PersonalInfo, SessionId, ShippingInfo},
    metrics::{Metrics, Transport},
    service::idgen::IdGenerator,
    service::mfa::SecondFactor,
    service::session::{Grant, SessionService},
    service::throttle::{LockoutKey, LockoutPolicy, Throttle, WindowKey},
    storage::store::CustomerStore,
};

/// A fresh access token and refresh token.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
}

/// A valid, unrevoked access token: whose it is and of which session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub customer: CustomerId,
    /// `None` for a token minted by the Go service.
    pub session: Option<SessionId>,
    /// How the session was signed in, as the token says.
    pub amr: Amr,
}

/// A validated signup.
#[derive(Debug, Clone)]
pub struct Signup {
    pub password: Password,
    pub personal: PersonalInfo,
    pub shipping: ShippingInfo,
}

/// What the service is built from.
pub struct AuthDeps {
    pub customers: Arc<dyn CustomerStore>,
    pub sessions: SessionService,
    pub tokens: TokenCodec,
    pub hasher: PasswordHasher,
    pub throttle: Throttle,
    pub abuse: AbusePolicy,
    pub ids: Arc<IdGenerator>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    /// TOTP and recovery codes (SPEC section 16).
    pub mfa: SecondFactor,
}

/// The limits of SPEC section 10, as configured.
#[derive(Debug, Clone)]
pub struct AbuseSettings {
    pub login_max_failures: u32,
    pub login_failure_window: std::time::Duration,
    pub login_lockout: std::time::Duration,
    pub login_max_lockout: std::time::Duration,
    pub login_max_failures_per_ip: u32,
    pub login_max_failures_per_account: u32,
    pub signup_max_per_ip_per_hour: u32,
    pub refusal_delay: std::time::Duration,
    pub uniform_errors: bool,
    pub min_password_score: u8,
}

impl AbuseSettings {
    /// The lockout counters share the window and the lockout lengths.
    pub fn policy(&self) -> AbusePolicy {
        let lockout = |max_failures| LockoutPolicy {
            max_failures,
            window: self.login_failure_window,
            first_lockout: self.login_lockout,
            max_lockout: self.login_max_lockout,
        };
        AbusePolicy {
            login: lockout(self.login_max_failures),
            login_per_ip: lockout(self.login_max_failures_per_ip),
            login_per_account: lockout(self.login_max_failures_per_account),
            signups_per_ip_per_hour: self.signup_max_per_ip_per_hour,
            uniform_errors: self.uniform_errors,
            min_password_score: self.min_password_score,
            refusal_delay: self.refusal_delay,
        }
    }
}

/// The limits of SPEC section 10.
#[derive(Debug, Clone)]
pub struct AbusePolicy {
    /// Failed logins per (email, client address).
    pub login: LockoutPolicy,
    /// Failed logins per client address, any email (`max_failures` 0 = off).
    pub login_per_ip: LockoutPolicy,
    /// Failed logins per account over every address (`max_failures` 0 = off).
    pub login_per_account: LockoutPolicy,
    /// Signups per client address per hour (0 = off).
    pub signups_per_ip_per_hour: u32,
    /// Unknown emails and wrong passwords both answer 401 `authentication failed`.
    pub uniform_errors: bool,
    /// zxcvbn score a new password needs (0 = only the length rule).
    pub min_password_score: u8,
    /// How long a refusal by a limit waits before it is answered.
    pub refusal_delay: std::time::Duration,
}

#[derive(Clone)]
pub struct AuthService(Arc<AuthDeps>);

fn outcome<T>(result: &Result<T, Error>) -> &'static str {
    match result {
        Ok(_) => "success",
        Err(e) => e.label(),
    }
}

impl AuthService {
    pub fn new(deps: AuthDeps) -> Self {
        // Every limit is a series from the start, so that its first refusal is a rise.
        for limit in LockoutKey::LABELS
            .into_iter()
            .chain(WindowKey::SIGNUP_LABELS)
        {
            deps.metrics.throttled.with_label_values(&[limit]);
        }
        for limit in LockoutKey::LABELS {
            deps.metrics.lockouts.with_label_values(&[limit]);
        }
        // Likewise the outcomes a dashboard or an alert divides by.
        let common = [
            "success",
            "too_many_attempts",
            "invalid_parameter",
            "unavailable",
        ];
        let m = &deps.metrics;
        for outcome in common.into_iter().chain(
            [
                Error::AuthenticationFailed,
                Error::CustomerNotFound,
                Error::CustomerInactive,
            ]
            .map(|e| e.label()),
        ) {
            m.logins.with_label_values(&[outcome]);
        }
        for outcome in common
            .into_iter()
            .chain([Error::DuplicateEntry, Error::PasswordTooWeak].map(|e| e.label()))
        {
            m.signups.with_label_values(&[outcome]);
        }
        for outcome in ["success", "unavailable"].into_iter().chain(
            [
                Error::TokenInvalid,
                Error::TokenExpired,
                Error::TokenRevoked,
                Error::CustomerInactive,
            ]
            .map(|e| e.label()),
        ) {
            m.refreshes.with_label_values(&[outcome]);
        }
        for transport in [Transport::Http, Transport::Grpc] {
            for outcome in [
                TokenError::Invalid,
                TokenError::Expired,
                TokenError::Revoked,
            ] {
                m.token_verifications
                    .with_label_values(&[transport.label(), outcome.label()]);
            }
        }
        for result in ["hit", "miss"] {
            m.token_cache.with_label_values(&[result]);
        }
        for from in [Algorithm::Bcrypt, Algorithm::Argon2id] {
            for to in [Algorithm::Bcrypt, Algorithm::Argon2id] {
                m.rehashes.with_label_values(&[from.label(), to.label()]);
            }
        }
        Self(Arc::new(deps))
    }

    pub fn sessions(&self) -> &SessionService {
        &self.0.sessions
    }

    /// The hashing pool (a password reset hashes the new password on it).
    /// How long a 429 of a limit is held before it is sent (by the HTTP layer, outside
    /// its load shedder).
    pub fn refusal_delay(&self) -> std::time::Duration {
        self.0.abuse.refusal_delay
    }

    pub(crate) fn hasher(&self) -> &PasswordHasher {
        &self.0.hasher
    }

    /// Pure verification of an access token: the signature, `exp`, and the in-memory
    /// revocation set; no storage, no cache. The `Auth` RPC and the HTTP extractor call
    /// this on every request.
    pub fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        let now = self.0.clock.now_secs();
        let claims = self.0.tokens.verify(token, TokenKind::Access, now)?;
        if let Some(sid) = &claims.sid
            && self.0.sessions.is_revoked(sid, now)
        {
            return Err(TokenError::Revoked);
        }
        Ok(Verified {
            customer: claims.customer,
            session: claims.sid,
            amr: claims.amr,
        })
    }

    fn mint(&self, grant: &Grant) -> TokenPair {
        TokenPair {
            access_token: self.0.tokens.mint(&grant.access),
            refresh_token: self.0.tokens.mint(&grant.refresh),
        }
    }
}
