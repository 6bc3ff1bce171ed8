//! Measuring the runtime environment from an environment spec.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use writ_core::{MeasuredFile, Measurement, Sha256Digest};

use crate::error::MeasureError;

/// What to measure, as written in an environment spec (TOML). Unknown keys are refused, so a
/// misspelt key never silently measures less.
///
/// ```toml
/// files = ["/etc/ssl/certs/ca-certificates.crt"]   # SHA-256 of each (symlinks resolved)
/// env = ["PATH", "LANG"]                            # values; unset ones are recorded as null
/// hostname = true
/// executable = "/usr/bin/git"                       # canonical path and SHA-256
/// container_image = { env = "WRIT_IMAGE_DIGEST" }   # or { value = "sha256:…" } or { file = "…" }
/// workload_id = { file = "/run/secrets/workload-id" }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSpec {
    /// Files whose content is hashed.
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// Environment variables whose values are recorded.
    #[serde(default)]
    pub env: Vec<String>,
    /// Whether the host name is recorded.
    #[serde(default)]
    pub hostname: bool,
    /// The executable that will run.
    #[serde(default)]
    pub executable: Option<PathBuf>,
    /// Where the container image digest comes from.
    #[serde(default)]
    pub container_image: Option<ValueSource>,
    /// Where the workload id comes from.
    #[serde(default)]
    pub workload_id: Option<ValueSource>,
}

/// Where a measured string comes from.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum ValueSource {
    /// A literal value.
    Value(String),
    /// An environment variable, which must be set and non-empty.
    Env(String),
    /// A file whose content (trimmed) is the value.
    File(PathBuf),
}

impl EnvSpec {
    /// Parses a spec from TOML text.
    pub fn from_toml(text: &str) -> Result<Self, MeasureError> {
        Ok(toml::from_str(text)?)
    }

    /// Reads a spec file.
    pub fn load(path: &Path) -> Result<Self, MeasureError> {
        let text = std::fs::read_to_string(path).map_err(|source| MeasureError::ReadSpec {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text)
    }
}

/// Measures the machine as `spec` says. `env` looks variables up (pass `std::env::var_os`
/// mapped to strings in production; a map in tests).
pub fn measure(
    spec: &EnvSpec,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Measurement, MeasureError> {
    let mut files = BTreeMap::new();
    for path in &spec.files {
        let measured = hash_file(path)?;
        files.insert(measured.path, measured.sha256);
    }
    let env_values = spec
        .env
        .iter()
        .map(|name| (name.clone(), env(name)))
        .collect();
    let hostname = if spec.hostname {
        Some(hostname()?)
    } else {
        None
    };
    let executable = spec.executable.as_deref().map(hash_file).transpose()?;
    let container_image = spec
        .container_image
        .as_ref()
        .map(|s| resolve(s, "container_image", env))
        .transpose()?;
    let workload_id = spec
        .workload_id
        .as_ref()
        .map(|s| resolve(s, "workload_id", env))
        .transpose()?;
    Ok(Measurement {
        files,
        env: env_values,
        hostname,
        executable,
        container_image,
        workload_id,
    })
}

/// The canonical path of `path` (symlinks resolved) and the SHA-256 of what it names, read
/// from one open file.
fn hash_file(path: &Path) -> Result<MeasuredFile, MeasureError> {
    let err = |source| MeasureError::File {
        path: path.to_owned(),
        source,
    };
    let canonical = std::fs::canonicalize(path).map_err(err)?;
    let mut file = File::open(&canonical).map_err(err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(MeasuredFile {
        path: canonical.to_string_lossy().into_owned(),
        sha256: Sha256Digest::from_bytes(hasher.finalize().into()),
    })
}

fn hostname() -> Result<String, MeasureError> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .ok_or(MeasureError::Hostname)
}

fn resolve(
    source: &ValueSource,
    what: &'static str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, MeasureError> {
    let value = match source {
        ValueSource::Value(v) => v.clone(),
        ValueSource::Env(name) => env(name).ok_or_else(|| MeasureError::Source {
            what,
            reason: format!("environment variable `{name}` is not set"),
        })?,
        ValueSource::File(path) => std::fs::read_to_string(path)
            .map_err(|e| MeasureError::Source {
                what,
                reason: format!("`{}`: {e}", path.display()),
            })?
            .trim()
            .to_owned(),
    };
    if value.is_empty() {
        return Err(MeasureError::Source {
            what,
            reason: "value is empty".into(),
        });
    }
    Ok(value)
}
