//! Logging setup: `tracing` events, human-readable or JSON, filtered by `RUST_LOG` or
//! `LOG_LEVEL`.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::{LogFormat, Settings};

/// Installs the global subscriber. Fails, naming the setting, when the filter is invalid.
pub fn init(settings: &Settings) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(&directives)
            .map_err(|e| anyhow::anyhow!("invalid value for RUST_LOG: {directives:?} ({e})"))?,
        _ => EnvFilter::try_new(&settings.log_level).map_err(|e| {
            anyhow::anyhow!(
                "invalid value for LOG_LEVEL: {:?} ({e})",
                settings.log_level
            )
        })?,
    };
    let registry = tracing_subscriber::registry().with(filter);
    let result = match settings.log_format {
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_target(false)
                    .with_ansi(std::io::stdout().is_terminal()),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().flatten_event(true))
            .try_init(),
    };
    // Already installed (tests start several apps in one process): keep the first.
    drop(result);
    Ok(())
}
