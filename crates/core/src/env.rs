//! The runtime-environment measurement a writ can be bound to (`env` claim).
//!
//! This is the format only; taking a measurement of a real machine is `writ-gate`'s job.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Sha256Digest;

/// What a gate measured about the environment an action runs in. Its digest is the SHA-256
/// of its RFC 8785 canonical JSON; absent parts are left out of the JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measurement {
    /// SHA-256 of each measured file, by canonical path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, Sha256Digest>,
    /// Recorded environment variables; `None` where the variable is unset.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, Option<String>>,
    /// The host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The executable that will run: its canonical path and SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable: Option<MeasuredFile>,
    /// The container image digest (for example `sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_image: Option<String>,
    /// The workload identity (for example a SPIFFE id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_id: Option<String>,
}

/// A file identified by its canonical path and content digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasuredFile {
    /// Canonical absolute path.
    pub path: String,
    /// SHA-256 of the content.
    pub sha256: Sha256Digest,
}

impl Measurement {
    /// The measurement as a JSON value.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// SHA-256 of the RFC 8785 canonical JSON: the value of the `env` claim.
    pub fn digest(&self) -> Sha256Digest {
        crate::canonical::digest(&self.to_value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_over_canonical_json_and_sensitive_to_every_part() {
        let mut m = Measurement::default();
        m.env.insert("PATH".into(), Some("/usr/bin".into()));
        m.env.insert("UNSET".into(), None);
        m.hostname = Some("build-1".into());
        let canonical = crate::canonical::to_canonical_string(&m.to_value());
        assert_eq!(
            canonical,
            r#"{"env":{"PATH":"/usr/bin","UNSET":null},"hostname":"build-1"}"#
        );
        assert_eq!(m.digest(), Sha256Digest::of(canonical.as_bytes()));

        let base = m.digest();
        let mut other = m.clone();
        other.env.insert("UNSET".into(), Some(String::new()));
        assert_ne!(other.digest(), base);
        let mut other = m.clone();
        other.workload_id = Some("spiffe://x".into());
        assert_ne!(other.digest(), base);
    }
}
