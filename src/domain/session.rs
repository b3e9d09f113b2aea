//! Sessions (SPEC section 9): what a login or signup starts, what a refresh renews and what
//! a revocation ends.

use super::customer::CustomerId;
use super::random_id::{SessionId, TokenId};

/// Why a session ended before its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    Logout,
    LogoutAll,
    PasswordChange,
    PasswordReset,
    AccountDeleted,
    Deactivated,
    /// A used refresh token was presented after the grace window: treated as stolen.
    Reuse,
    /// The customer started more sessions than `MAX_SESSIONS_PER_CUSTOMER`.
    Evicted,
    /// Its lifetime ran out (counted when it is swept or refused).
    Expired,
    /// An operator ended it.
    Admin,
    /// The link of an "email changed" notice put the old address back (rule 15.2).
    EmailReverted,
}

impl RevokeReason {
    pub const ALL: [RevokeReason; 11] = [
        RevokeReason::Logout,
        RevokeReason::LogoutAll,
        RevokeReason::PasswordChange,
        RevokeReason::PasswordReset,
        RevokeReason::AccountDeleted,
        RevokeReason::Deactivated,
        RevokeReason::Reuse,
        RevokeReason::Evicted,
        RevokeReason::Expired,
        RevokeReason::Admin,
        RevokeReason::EmailReverted,
    ];

    /// The label in metrics and the `revoke_reason` column.
    pub fn label(self) -> &'static str {
        match self {
            RevokeReason::Logout => "logout",
            RevokeReason::LogoutAll => "logout_all",
            RevokeReason::PasswordChange => "password_change",
            RevokeReason::PasswordReset => "password_reset",
            RevokeReason::AccountDeleted => "account_deleted",
            RevokeReason::Deactivated => "deactivated",
            RevokeReason::Reuse => "reuse",
            RevokeReason::Evicted => "evicted",
            RevokeReason::Expired => "expired",
            RevokeReason::Admin => "admin",
            RevokeReason::EmailReverted => "email_reverted",
        }
    }

    pub fn parse(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.label() == label)
    }
}

/// Where a session was started from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub ip: Option<std::net::IpAddr>,
}

/// A session as stored. Times ending in `_at` are Unix milliseconds; `*_exp` and `*_iat`
/// are Unix seconds, as in tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub customer: CustomerId,
    pub created_at: i64,
    pub refreshed_at: i64,
    /// The end of its absolute lifetime.
    pub expires_at: i64,
    /// The refresh token that may be used now, and its claims (to write it again).
    pub refresh_jti: TokenId,
    pub refresh_iat: i64,
    pub refresh_exp: i64,
    /// The refresh token it replaced, and when (for the grace window).
    pub previous_jti: Option<TokenId>,
    pub rotated_at: Option<i64>,
    /// The latest `exp` of an access token of this session.
    pub access_exp: i64,
    /// No token of this session can be presented after this.
    pub tokens_exp: i64,
    pub user_agent: String,
    pub client_ip: String,
    pub revoked_at: Option<i64>,
    pub revoke_reason: Option<RevokeReason>,
}

impl Session {
    /// Not revoked and within its lifetime at `now_ms`.
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.revoked_at.is_none() && now_ms < self.expires_at && now_ms / 1000 <= self.tokens_exp
    }
}

/// A revoked session whose access tokens may still be presented until `access_until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    pub session: SessionId,
    /// Unix seconds: the latest `exp` of its access tokens.
    pub access_until: i64,
    /// Unix milliseconds.
    pub revoked_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_have_stable_labels() {
        for reason in RevokeReason::ALL {
            assert_eq!(RevokeReason::parse(reason.label()), Some(reason));
        }
    }
}
