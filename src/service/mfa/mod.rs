//! The second factor of SPEC section 16, what needs no session or throttle: the key that
//! seals TOTP secrets and digests recovery codes (`cipher`), RFC 6238 (`totp`), recovery
//! codes (`codes`). The flows that use them are the auth service's (`auth::mfa`).

pub mod cipher;
pub mod codes;
pub mod totp;

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::Context;

pub use cipher::MfaKey;

use crate::{domain::Secret, service::mail::Mailer, storage::store::MfaStore};

/// The generated key's file inside `DATA_DIR` (embedded SQLite only).
const MFA_KEY_FILE: &str = "mfa_key";

/// Wrong codes that use up an `mfa_token`.
pub const MAX_TOKEN_ATTEMPTS: u32 = 5;

#[derive(Debug, Clone)]
pub struct MfaSettings {
    /// `MFA_ENCRYPTION_KEY`: 32 bytes, base64.
    pub encryption_key: Option<Secret>,
    /// `MFA_TOKEN_SECONDS`.
    pub token_ttl: Duration,
    /// `MFA_ISSUER`: the name an authenticator app lists the account under.
    pub issuer: String,
}

/// What the second-factor flows are built from.
#[derive(Clone)]
pub struct SecondFactor {
    pub store: Arc<dyn MfaStore>,
    /// `None`: not configured (MySQL/PostgreSQL without `MFA_ENCRYPTION_KEY`); enrolment
    /// answers 503 `second factor not configured`.
    pub key: Option<MfaKey>,
    pub token_ttl: Duration,
    pub issuer: String,
    pub mailer: Mailer,
}

/// `configured`, or, on the embedded SQLite database (`keep`), a key generated once and
/// kept in `data_dir` beside the JWT secret; otherwise none, with a warning.
pub fn mfa_key(
    configured: Option<&Secret>,
    data_dir: &Path,
    keep: bool,
) -> anyhow::Result<Option<MfaKey>> {
    if let Some(secret) = configured {
        let key = MfaKey::parse_base64(secret.expose())
            .context("invalid value for MFA_ENCRYPTION_KEY: expected 32 bytes in base64")?;
        return Ok(Some(key));
    }
    if keep {
        let path = data_dir.join(MFA_KEY_FILE);
        let text = crate::service::kept::kept_secret(&path, MfaKey::generate_base64).with_context(
            || {
                format!(
                    "MFA_ENCRYPTION_KEY is not set and {} cannot be used",
                    path.display()
                )
            },
        )?;
        let key = MfaKey::parse_base64(text.expose())
            .with_context(|| format!("{} does not hold 32 bytes in base64", path.display()))?;
        tracing::info!(file = %path.display(), "MFA_ENCRYPTION_KEY not set: using the generated key kept in the data directory");
        return Ok(Some(key));
    }
    tracing::warn!(
        "MFA_ENCRYPTION_KEY is not set: second factors cannot be enrolled or checked (503 second factor not configured); set 32 random bytes in base64, the same on every replica"
    );
    Ok(None)
}
