//! The user's configuration file (TOML).
//!
//! Looked up at `--config FILE`, else `$TRAJECTORY_CONFIG`, else
//! `$XDG_CONFIG_HOME/trajectory/config.toml` (`~/.config/trajectory/config.toml`)
//! when it exists. Every section is optional:
//!
//! ```toml
//! [locality]                 # provider id -> local | cloud | unknown
//! gpu-box = "local"
//! openrouter = "cloud"
//!
//! [[redaction.rules]]        # extra secret patterns (Rust regex syntax)
//! name = "employee_id"
//! pattern = "EMP-[0-9]{6}"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use trajectory_schema::Locality;

/// The parsed configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub locality: BTreeMap<String, String>,
    #[serde(default)]
    pub redaction: RedactionConfig,
}

/// `[redaction]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionConfig {
    #[serde(default)]
    pub rules: Vec<RedactionRule>,
}

/// One `[[redaction.rules]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionRule {
    pub name: String,
    pub pattern: String,
}

impl Config {
    /// Loads `explicit`, else the default location if it exists, else an empty config.
    pub fn load(explicit: Option<&Path>) -> Result<Config> {
        let path = match explicit {
            Some(path) => Some(path.to_path_buf()),
            None => default_path().filter(|p| p.is_file()),
        };
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config {}", path.display()))
    }

    /// `[locality]` as typed overrides.
    pub fn locality_overrides(&self) -> Result<Vec<(String, Locality)>> {
        self.locality
            .iter()
            .map(|(provider, value)| {
                let locality = match value.as_str() {
                    "local" => Locality::Local,
                    "cloud" => Locality::Cloud,
                    "unknown" => Locality::Unknown,
                    "internal" => Locality::Internal,
                    other => bail!(
                        "config [locality] {provider} = {other:?}: use \"local\", \"cloud\", \"internal\" or \"unknown\""
                    ),
                };
                Ok((provider.clone(), locality))
            })
            .collect()
    }
}

fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("trajectory/config.toml"))
}
