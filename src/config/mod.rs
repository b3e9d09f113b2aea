//! Settings in layers: built-in defaults, then `config.yml` (the Go service's layout), then
//! environment variables, the environment winning. Every value is checked at start and a
//! bad one stops the start with an error naming it. Secrets never print.
//!
//! Each module owns its settings struct; this module only reads and validates them
//! (`sections.rs` holds the table: one row per setting, grouped by owner).

mod error;
mod read;
mod sections;
mod table;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use error::ConfigError;
pub use read::SettingSpec;

use crate::{
    service::auth::{AbuseSettings, PasswordSettings},
    service::idgen::IdSettings,
    service::keys::SigningSettings,
    service::mail::{EmailChangeSettings, MailSettings},
    service::mfa::MfaSettings,
    service::recovery::MailLimits,
    service::session::SessionSettings,
    storage::cache::CacheSettings,
    storage::redis::RedisSettings,
    storage::store::{DatabaseSettings, PoolSettings},
    telemetry::TelemetrySettings,
    transport::{HttpServerSettings, ListenSettings, OperatorSettings, ShutdownSettings},
};
use read::Raw;

/// Every module's settings, as configured.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: ListenSettings,
    pub telemetry: TelemetrySettings,
    pub signing: SigningSettings,
    pub session: SessionSettings,
    pub http: HttpServerSettings,
    pub abuse: AbuseSettings,
    pub password: PasswordSettings,
    pub database: DatabaseSettings,
    pub pool: PoolSettings,
    pub ids: IdSettings,
    pub shutdown: ShutdownSettings,
    pub cache: CacheSettings,
    pub redis: RedisSettings,
    pub mail: MailSettings,
    pub mail_limits: MailLimits,
    pub email_change: EmailChangeSettings,
    pub mfa: MfaSettings,
    pub operator: OperatorSettings,
}

/// Every setting the service reads, in the order `--help` lists them.
pub fn settings() -> impl Iterator<Item = &'static SettingSpec> + Clone {
    sections::SECTIONS.iter().flat_map(|rows| rows.iter())
}

/// The settings table for `--help`.
pub fn help_table() -> String {
    table::help_table(settings())
}

/// The config file read when no path is given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "config.yml";

impl Settings {
    /// Reads `config.yml` (or `explicit_file`, which must exist) and the process environment.
    pub fn load(explicit_file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::from_sources(explicit_file, |key| std::env::var(key).ok())
    }

    /// As `load`, with the environment given as a lookup function (tests pass a map).
    pub fn from_sources(
        explicit_file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut raw = Raw::defaults(settings());
        let file = match explicit_file {
            Some(path) => Some(path.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.exists()),
        };
        if let Some(path) = file {
            read::read_yaml(&path, &mut raw, settings())?;
        }
        for spec in settings() {
            if let Some(value) = env(spec.env).filter(|v| !v.is_empty()) {
                raw.0.insert(spec.env, value);
            }
        }
        Self::from_raw(&raw)
    }

    /// Defaults only, as if nothing was configured.
    pub fn defaults() -> Self {
        #[expect(
            clippy::expect_used,
            reason = "the built-in defaults are valid (tested)"
        )]
        Self::from_raw(&Raw::defaults(settings())).expect("built-in defaults are valid")
    }

    fn from_raw(raw: &Raw) -> Result<Self, ConfigError> {
        use sections::*;
        let settings = Self {
            listen: read_listen(raw)?,
            telemetry: read_telemetry(raw)?,
            signing: read_signing(raw)?,
            session: read_session(raw)?,
            http: read_http(raw)?,
            abuse: read_abuse(raw)?,
            password: read_password(raw)?,
            database: read_database(raw)?,
            pool: read_pool(raw)?,
            ids: read_ids(raw)?,
            shutdown: read_shutdown(raw)?,
            cache: read_cache(raw)?,
            redis: read_redis(raw)?,
            mail: read_mail(raw)?,
            mail_limits: read_mail_limits(raw)?,
            email_change: read_email_change(raw)?,
            mfa: read_mfa(raw)?,
            operator: read_operator(raw)?,
        };
        settings.check(raw)?;
        Ok(settings)
    }

    /// The rules that span several settings, checked once, after every value has parsed.
    fn check(&self, raw: &Raw) -> Result<(), ConfigError> {
        // An operator API nobody can call is a mistake, not a setting.
        if self.operator.port != 0 && self.operator.api_keys.is_empty() {
            return Err(ConfigError::Invalid {
                key: "ADMIN_PORT",
                value: raw.text("ADMIN_PORT"),
                expected: sections::ADMIN_PORT_EXPECTED,
            });
        }
        Ok(())
    }
}
