//! Errors of writ-gate.

use std::path::PathBuf;

/// Why the environment could not be measured. A gate that cannot measure denies with
/// `environment_integrity_failure`.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// The spec file could not be read.
    #[error("cannot read environment spec `{path}`: {source}")]
    ReadSpec {
        /// The spec path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The spec is not valid TOML of the expected shape.
    #[error("invalid environment spec: {0}")]
    Spec(#[from] toml::de::Error),
    /// A file named by the spec could not be resolved or read.
    #[error("cannot measure `{path}`: {source}")]
    File {
        /// The path as the spec names it.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The host name could not be read.
    #[error("cannot read the host name")]
    Hostname,
    /// A value's source (variable or file) is missing or empty.
    #[error("{what}: {reason}")]
    Source {
        /// Which measured value.
        what: &'static str,
        /// What went wrong.
        reason: String,
    },
}
