//! Raw values (defaults, `config.yml`, environment) and the parsers that turn them into
//! typed values. Each parser carries the "expected" text of its error message.

use std::{collections::HashMap, path::Path, str::FromStr, time::Duration};

use serde_yaml_ng::Value;

use super::error::ConfigError;

/// One setting: its environment name, its key in `config.yml`, its default and what it does.
#[derive(Debug)]
pub struct SettingSpec {
    pub env: &'static str,
    pub yaml: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

use crate::domain::Secret;

/// The raw text of every setting, by environment name.
pub struct Raw(pub(super) HashMap<&'static str, String>);

impl Raw {
    /// The defaults of every setting.
    pub(super) fn defaults<'a>(settings: impl Iterator<Item = &'a SettingSpec>) -> Self {
        Self(settings.map(|s| (s.env, s.default.to_owned())).collect())
    }

    /// The trimmed text of `env`.
    pub fn text(&self, env: &str) -> String {
        self.0
            .get(env)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    }

    /// `env` parsed, or an error naming it.
    pub fn read<T>(&self, env: &'static str, parser: Parser<T>) -> Result<T, ConfigError> {
        let value = self.text(env);
        (parser.parse)(&value).ok_or(ConfigError::Invalid {
            key: env,
            value,
            expected: parser.expected,
        })
    }
}

/// Text to value; `None` = not a valid value.
type ParseFn<T> = Box<dyn Fn(&str) -> Option<T>>;

/// How one setting's text becomes its value, and what it should look like.
pub struct Parser<T> {
    pub expected: &'static str,
    pub parse: ParseFn<T>,
}

/// A parser from a function.
pub fn custom<T>(expected: &'static str, parse: impl Fn(&str) -> Option<T> + 'static) -> Parser<T> {
    Parser {
        expected,
        parse: Box::new(parse),
    }
}

/// Any text.
pub fn text() -> Parser<String> {
    custom("text", |v| Some(v.to_owned()))
}

/// Any text; empty = `None`.
pub fn non_empty() -> Parser<Option<String>> {
    custom("text", |v| {
        Some(Some(v.to_owned()).filter(|v| !v.is_empty()))
    })
}

/// A secret, possibly empty.
pub fn secret() -> Parser<Secret> {
    custom("text", |v| Some(Secret::new(v)))
}

/// A secret; empty = `None`.
pub fn optional_secret() -> Parser<Option<Secret>> {
    custom("text", |v| {
        Some(Some(v).filter(|v| !v.is_empty()).map(Secret::new))
    })
}

/// Comma-separated secrets, empty items skipped.
pub fn secrets_csv() -> Parser<Vec<Secret>> {
    custom("comma-separated secrets", |v| {
        Some(
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Secret::new)
                .collect(),
        )
    })
}

/// A path.
pub fn path() -> Parser<std::path::PathBuf> {
    custom("a path", |v| Some(v.into()))
}

/// A path; empty = `None`.
pub fn optional_path() -> Parser<Option<std::path::PathBuf>> {
    custom("a path", |v| {
        Some(Some(v).filter(|v| !v.is_empty()).map(Into::into))
    })
}

/// Empty = `None`; anything else must satisfy `inner`.
pub fn optional<T: 'static>(inner: Parser<T>) -> Parser<Option<T>> {
    let Parser { expected, parse } = inner;
    custom(expected, move |v| {
        if v.is_empty() {
            Some(None)
        } else {
            parse(v).map(Some)
        }
    })
}

/// Any value of a `FromStr` type.
pub fn from_str<T: FromStr>(expected: &'static str) -> Parser<T> {
    custom(expected, |v| v.parse().ok())
}

pub fn port() -> Parser<u16> {
    from_str("a port number 0-65535")
}

pub fn ip() -> Parser<std::net::IpAddr> {
    from_str("an IP address")
}

/// A whole number, 0 allowed.
pub fn whole<T: FromStr>() -> Parser<T> {
    from_str("a whole number")
}

/// A whole number above 0.
pub fn positive<T: FromStr + PartialOrd + Default>() -> Parser<T> {
    custom("a whole number above 0", |v| {
        v.parse().ok().filter(|n| *n > T::default())
    })
}

/// A whole number within `range`.
pub fn within<T: FromStr + PartialOrd + 'static>(
    expected: &'static str,
    range: std::ops::RangeInclusive<T>,
) -> Parser<T> {
    custom(expected, move |v| {
        v.parse().ok().filter(|n| range.contains(n))
    })
}

/// `true`/`false` and the usual spellings.
pub fn boolean() -> Parser<bool> {
    custom("true or false", |v| match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    })
}

/// A whole number of `unit`s, mapped through `f`.
fn scaled(base: Parser<u64>, f: fn(u64) -> Duration) -> Parser<Duration> {
    let Parser { expected, parse } = base;
    custom(expected, move |v| parse(v).map(f))
}

/// Seconds, 0 allowed.
pub fn seconds() -> Parser<Duration> {
    scaled(whole(), Duration::from_secs)
}

/// Seconds, above 0.
pub fn seconds_positive() -> Parser<Duration> {
    scaled(positive(), Duration::from_secs)
}

/// Milliseconds, 0 allowed.
pub fn millis() -> Parser<Duration> {
    scaled(whole(), Duration::from_millis)
}

/// Milliseconds, above 0.
pub fn millis_positive() -> Parser<Duration> {
    scaled(positive(), Duration::from_millis)
}

/// Days, above 0.
pub fn days_positive() -> Parser<Duration> {
    scaled(positive(), |d| {
        Duration::from_secs(d.saturating_mul(86_400))
    })
}

/// MiB above 0, as bytes.
pub fn mebibytes_positive() -> Parser<u64> {
    let Parser { expected, parse } = positive::<u64>();
    custom(expected, move |v| {
        parse(v).map(|m| m.saturating_mul(1024 * 1024))
    })
}

/// Comma-separated items, empty items skipped; every item must parse.
pub fn csv<T: 'static>(
    expected: &'static str,
    item: impl Fn(&str) -> Option<T> + 'static,
) -> Parser<Vec<T>> {
    custom(expected, move |v| {
        v.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(&item)
            .collect()
    })
}

/// One of the named values.
pub fn one_of<T: Copy + 'static>(
    expected: &'static str,
    names: &'static [(&'static str, T)],
) -> Parser<T> {
    custom(expected, move |v| {
        names.iter().find(|(name, _)| *name == v).map(|(_, t)| *t)
    })
}

/// Reads the settings' keys from a `config.yml` into `raw`.
pub(super) fn read_yaml<'a>(
    path: &Path,
    raw: &mut Raw,
    settings: impl Iterator<Item = &'a SettingSpec>,
) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::File {
        path: path.into(),
        source,
    })?;
    let doc: Value = serde_yaml_ng::from_str(&text).map_err(|source| ConfigError::Yaml {
        path: path.into(),
        source,
    })?;
    for spec in settings {
        let mut node = Some(&doc);
        for part in spec.yaml.split('.') {
            node = node.and_then(|n| n.get(part));
        }
        let value = match node {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(_) => {
                return Err(ConfigError::YamlShape {
                    path: path.into(),
                    key: spec.env,
                });
            }
        };
        raw.0.insert(spec.env, value);
    }
    Ok(())
}
