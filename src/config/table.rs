//! The settings table: one row per setting, grouped by the module that owns it.
//!
//! `section!` takes, for one owner's settings struct, rows of
//! `field: ENV_NAME, "config.yml.key", "default", parser, "help";` and generates both that
//! section's `SettingSpec` rows and the function that builds the struct from the raw
//! values. The struct literal it writes names every field, so a field without a row, or a
//! row without a field, is a compile error.

use super::read::SettingSpec;

macro_rules! section {
    ($(
        $(#[$doc:meta])*
        $rows:ident, $read:ident -> $owner:ident {
            $($field:ident: $env:ident, $yaml:literal, $default:literal, $parser:expr, $help:literal;)*
        }
    )*) => {
        $(
            $(#[$doc])*
            pub const $rows: &[$crate::config::read::SettingSpec] = &[$(
                $crate::config::read::SettingSpec {
                    env: stringify!($env),
                    yaml: $yaml,
                    default: $default,
                    help: $help,
                }
            ),*];

            pub fn $read(
                raw: &$crate::config::read::Raw,
            ) -> Result<$owner, $crate::config::error::ConfigError> {
                Ok($owner {
                    $($field: raw.read(stringify!($env), $parser)?,)*
                })
            }
        )*
    };
}

pub(crate) use section;

/// The settings table for `--help`.
pub fn help_table<'a>(settings: impl Iterator<Item = &'a SettingSpec>) -> String {
    let mut out =
        String::from("Settings (environment variable / config.yml key; the environment wins):\n");
    for s in settings {
        let default = if s.default.is_empty() {
            String::new()
        } else {
            format!(" [default: {}]", s.default)
        };
        out.push_str(&format!(
            "  {:<34} {}\n      {}{}\n",
            s.env, s.yaml, s.help, default
        ));
    }
    out
}
