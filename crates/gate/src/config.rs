//! A gate's configuration (`gate.toml`): which authority it trusts (URL, issuer, pinned JWKS),
//! who it is (its executor principal, key and token), what it measures and which environment
//! variables it passes through to the commands it runs.
//!
//! The file is the gate's, not its caller's: the `writ exec` command line and environment
//! cannot override any of it. It lives at `$XDG_CONFIG_HOME/writ/gate.toml`, else
//! `~/.config/writ/gate.toml`; relative paths in it are relative to its directory.
//!
//! ```toml
//! authority_url = "https://writ.example.com"
//! issuer = "https://writ.example.com"
//! executor = "gate-1"
//! executor_key = "gate-1.key.pem"          # Ed25519 PKCS#8 PEM, mode 0600
//! executor_token_file = "gate-1.token"     # mode 0600
//! jwks = "jwks.json"                       # the authority's keys, pinned
//! ca_cert = "ca.pem"                       # optional: trust this CA for https://
//! env_spec = "env.toml"                    # optional: bind writs to this measurement
//! pass_env = ["PATH", "HOME", "LANG", "TERM"]
//! ```

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The variables passed through to commands when the config names none.
pub const DEFAULT_PASS_ENV: [&str; 4] = ["PATH", "HOME", "LANG", "TERM"];

/// The file name of a gate's configuration, under `writ/` in the config directory.
pub const GATE_CONFIG_FILE: &str = "gate.toml";

/// A gate's configuration. Unknown keys are refused, so a misspelt key never silently
/// weakens the gate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// The authority's base URL (`https://`, or `http://` on loopback).
    pub authority_url: String,
    /// The issuer (`iss`) the gate trusts.
    pub issuer: String,
    /// The gate's executor principal: the `aud` its writs must name.
    pub executor: String,
    /// The executor's Ed25519 private key (PKCS#8 PEM, mode 0600): proof of possession
    /// and receipts.
    pub executor_key: PathBuf,
    /// The executor principal's bearer token (mode 0600).
    pub executor_token_file: PathBuf,
    /// The authority's key set (JWKS), pinned at `writ gate init`.
    pub jwks: PathBuf,
    /// CA certificates (PEM) trusted for `https://` instead of the webpki roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    /// The environment spec; when set, every writ must be bound to its measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_spec: Option<PathBuf>,
    /// Environment variables passed through to the commands the gate runs; all others are
    /// cleared.
    #[serde(default = "default_pass_env")]
    pub pass_env: Vec<String>,
}

fn default_pass_env() -> Vec<String> {
    DEFAULT_PASS_ENV.iter().map(|s| (*s).to_owned()).collect()
}

/// Why a gate configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read gate config `{path}`: {source}")]
    Read {
        /// The config path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not TOML of the expected shape.
    #[error("gate config: {0}")]
    Parse(#[from] toml::de::Error),
    /// A value is not acceptable.
    #[error("gate config: `{field}`: {reason}")]
    Invalid {
        /// The key.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Whether `name` is a portable environment variable name (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl GateConfig {
    /// Parses and validates a config; relative paths are resolved against `base` (the
    /// config file's directory).
    pub fn from_toml(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let mut config: GateConfig = toml::from_str(text)?;
        config.resolve(base);
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_toml(&text, &base)
    }

    /// The config as TOML text.
    pub fn to_toml(&self) -> String {
        // A struct of strings, paths and lists always serializes.
        toml::to_string(self).unwrap_or_default()
    }

    fn resolve(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        };
        join(&mut self.executor_key);
        join(&mut self.executor_token_file);
        join(&mut self.jwks);
        if let Some(p) = self.ca_cert.as_mut() {
            join(p);
        }
        if let Some(p) = self.env_spec.as_mut() {
            join(p);
        }
    }

    /// Checks every value that can be checked without reading other files.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = self.authority_url.trim();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(invalid(
                "authority_url",
                format!("`{url}` must start with https:// (or http:// for a loopback address)"),
            ));
        }
        if self.issuer.trim().is_empty() {
            return Err(invalid("issuer", "is empty"));
        }
        if self.executor.is_empty()
            || self
                .executor
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid(
                "executor",
                format!("`{}` is not a principal name", self.executor),
            ));
        }
        for (field, path) in [
            ("executor_key", &self.executor_key),
            ("executor_token_file", &self.executor_token_file),
            ("jwks", &self.jwks),
        ] {
            if path.as_os_str().is_empty() {
                return Err(invalid(field, "is empty"));
            }
        }
        let mut seen = BTreeSet::new();
        for name in &self.pass_env {
            if !is_env_name(name) {
                return Err(invalid(
                    "pass_env",
                    format!("`{name}` is not an environment variable name"),
                ));
            }
            if !seen.insert(name.as_str()) {
                return Err(invalid("pass_env", format!("`{name}` is listed twice")));
            }
        }
        Ok(())
    }
}

/// Where the gate config lives: `$XDG_CONFIG_HOME/writ/gate.toml`, else
/// `$HOME/.config/writ/gate.toml`. `env` reads variables (`std::env::var_os` in production).
pub fn default_config_path(env: &dyn Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let non_empty = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = non_empty("XDG_CONFIG_HOME") {
        return Some(dir.join("writ").join(GATE_CONFIG_FILE));
    }
    non_empty("HOME").map(|home| home.join(".config/writ").join(GATE_CONFIG_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
authority_url = "http://127.0.0.1:7070"
issuer = "http://127.0.0.1:7070"
executor = "gate-1"
executor_key = "gate-1.key.pem"
executor_token_file = "/etc/writ/gate-1.token"
jwks = "jwks.json"
"#;

    #[test]
    fn paths_resolve_against_the_config_dir_and_defaults_apply() {
        let config = GateConfig::from_toml(MINIMAL, Path::new("/home/u/.config/writ")).unwrap();
        assert_eq!(
            config.executor_key,
            Path::new("/home/u/.config/writ/gate-1.key.pem")
        );
        assert_eq!(
            config.executor_token_file,
            Path::new("/etc/writ/gate-1.token")
        );
        assert_eq!(config.pass_env, ["PATH", "HOME", "LANG", "TERM"]);
        assert_eq!(config.env_spec, None);
        let again = GateConfig::from_toml(&config.to_toml(), Path::new("/elsewhere")).unwrap();
        assert_eq!(again, config);
    }

    #[test]
    fn bad_configs_are_refused() {
        let with = |extra: &str| format!("{MINIMAL}{extra}\n");
        for bad in [
            with("url = \"x\""),
            with("pass_env = [\"A B\"]"),
            with("pass_env = [\"PATH\", \"PATH\"]"),
            with("pass_env = [\"1X\"]"),
            MINIMAL.replace("http://127", "ftp://127"),
            MINIMAL.replace("\"gate-1\"", "\"gate 1\""),
            MINIMAL.replace("issuer = \"http://127.0.0.1:7070\"", "issuer = \"\""),
            MINIMAL.replace("jwks = \"jwks.json\"", ""),
        ] {
            assert!(
                GateConfig::from_toml(&bad, Path::new("/")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_default_location_follows_xdg() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            default_config_path(&env(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")])),
            Some(PathBuf::from("/x/writ/gate.toml"))
        );
        assert_eq!(
            default_config_path(&env(&[("XDG_CONFIG_HOME", ""), ("HOME", "/h")])),
            Some(PathBuf::from("/h/.config/writ/gate.toml"))
        );
        assert_eq!(default_config_path(&env(&[])), None);
        assert!(is_env_name("_A1") && !is_env_name("") && !is_env_name("A-B"));
    }
}
