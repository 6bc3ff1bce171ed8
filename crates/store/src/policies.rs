//! Policy sets the authority has applied, by digest: their full text, which one is in force,
//! and which digests are retired (their writs fail with `policy_mismatch`).

use writ_core::Sha256Digest;

use crate::error::StoreError;

/// The texts of one policy set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyTexts {
    /// The Cedar schema.
    pub schema: String,
    /// The Cedar policies.
    pub policies: String,
    /// The entities, as JSON text.
    pub entities: String,
}

/// Where applied policy sets live.
pub trait PolicyStore: Send + Sync + std::fmt::Debug {
    /// The set in force, if any was ever applied.
    fn in_force(&self) -> Result<Option<(Sha256Digest, PolicyTexts)>, StoreError>;
    /// Stores the set and puts it in force; a retired digest is refused.
    fn apply(&self, digest: &Sha256Digest, texts: &PolicyTexts, now: u64)
        -> Result<(), StoreError>;
    /// Retires a digest; the set in force is refused. False when it was retired already.
    fn retire(&self, digest: &Sha256Digest, now: u64) -> Result<bool, StoreError>;
    /// Every retired digest.
    fn retired(&self) -> Result<Vec<Sha256Digest>, StoreError>;
}
