//! What a bad setting or config file stops the start with: always the name of the key.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value for {key}: {value:?} ({expected})")]
    Invalid {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("cannot read config file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid YAML: {source}")]
    Yaml {
        path: PathBuf,
        source: serde_yaml_ng::Error,
    },
    #[error("config file {path}: {key} must be a plain value, not a list or map")]
    YamlShape { path: PathBuf, key: &'static str },
}
