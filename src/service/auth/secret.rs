//! The HS256 secret when `JWT_SECRET` is not set: generated, and kept in `DATA_DIR` for the
//! embedded SQLite setup so that restarts keep tokens valid; per process otherwise (with a
//! warning, since replicas would not accept each other's tokens).

use std::path::Path;

use anyhow::Context;

use crate::{domain::Secret, service::kept::kept_secret};

/// The generated secret's file inside `DATA_DIR`.
const JWT_SECRET_FILE: &str = "jwt_secret";

/// Below this, a configured secret is warned about at start (HS256's own output length).
const MIN_SECRET_BYTES: usize = 32;

/// `configured`, or a generated secret; kept in `data_dir` when `keep` (embedded SQLite).
pub fn jwt_secret(
    configured: Option<&Secret>,
    data_dir: &Path,
    keep: bool,
) -> anyhow::Result<Secret> {
    if let Some(secret) = configured {
        if secret.expose().len() < MIN_SECRET_BYTES {
            // Rule 15.11: HS256 with fewer bytes than its hash is guessable offline from
            // any one token; the Go service's secrets may be short, so warn, not refuse.
            tracing::warn!(
                bytes = secret.expose().len(),
                "JWT_SECRET is shorter than 32 bytes: a token lets anyone try to guess it offline; set at least 32 random bytes"
            );
        }
        return Ok(secret.clone());
    }
    if keep {
        let path = data_dir.join(JWT_SECRET_FILE);
        let secret = kept_secret(&path, generate).with_context(|| {
            format!(
                "JWT_SECRET is not set and {} cannot be used",
                path.display()
            )
        })?;
        tracing::info!(file = %path.display(), "JWT_SECRET not set: using the generated secret kept in the data directory");
        return Ok(secret);
    }
    tracing::warn!(
        "JWT_SECRET not set: using a random secret for this process only; other replicas will reject its tokens"
    );
    Ok(Secret::new(generate()))
}

fn generate() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_secret_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let first = jwt_secret(None, dir.path(), true).unwrap();
        let second = jwt_secret(None, dir.path(), true).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.expose().len(), 64);
        let configured = Secret::new("given");
        assert_eq!(
            jwt_secret(Some(&configured), dir.path(), true).unwrap(),
            configured
        );
        assert_ne!(jwt_secret(None, dir.path(), false).unwrap(), first);
    }
}
