//! The authority's writ-signing keys: every key it announced, when each starts signing, and
//! which were retired or revoked.

use writ_core::SigningKey;

use crate::error::StoreError;

/// One signing key as stored.
#[derive(Debug)]
pub struct StoredKey {
    /// The key.
    pub key: SigningKey,
    /// When it was first published.
    pub announced_at: u64,
    /// From when it signs (until a later key activates).
    pub activates_at: u64,
    /// When it left the JWKS after its last writ expired, if it has.
    pub removed_at: Option<u64>,
    /// When an administrator revoked it, if they did.
    pub revoked_at: Option<u64>,
}

/// Where the signing keys live.
pub trait KeyStore: Send + Sync + std::fmt::Debug {
    /// Every key, oldest first.
    fn list(&self) -> Result<Vec<StoredKey>, StoreError>;
    /// Adds a key announced at `announced_at` that signs from `activates_at`.
    fn add(&self, key: &SigningKey, announced_at: u64, activates_at: u64)
        -> Result<(), StoreError>;
    /// Marks `kid` as gone from the JWKS at `at`; false when it was already.
    fn mark_removed(&self, kid: &str, at: u64) -> Result<bool, StoreError>;
    /// Revokes `kid` at `at`; false when it was already.
    fn revoke(&self, kid: &str, at: u64) -> Result<bool, StoreError>;
}
