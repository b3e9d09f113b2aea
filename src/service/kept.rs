//! A secret the embedded setup generates once and keeps in `DATA_DIR` (the JWT secret, the
//! second factor's key), so that a restart keeps what it protects usable.

use std::path::Path;

use crate::domain::Secret;

/// The secret kept in `path`, written there by `generate` when the file is missing or
/// empty (readable by the owner only).
pub fn kept_secret(path: &Path, generate: fn() -> String) -> std::io::Result<Secret> {
    match std::fs::read_to_string(path) {
        Ok(existing) if !existing.trim().is_empty() => return Ok(Secret::new(existing.trim())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let secret = generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, secret.as_bytes())?;
    Ok(Secret::new(secret))
}
