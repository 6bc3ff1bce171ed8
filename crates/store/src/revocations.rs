//! Revocation state the authority keeps: revoked writs and principals, and the delegation
//! links through which revoking a writ revokes its subtree.

use writ_core::{Jti, RevocationStatus, UnixTime};

use crate::error::StoreError;

/// Where revocations and delegation links live. [`RevocationStatus::check`] walks a writ's
/// recorded ancestry, so a revoked ancestor revokes it.
pub trait RevocationStore: RevocationStatus + Send + Sync + std::fmt::Debug {
    /// Revokes a writ (and, through lineage, its descendants).
    fn revoke_writ(&self, jti: &Jti) -> Result<(), StoreError>;
    /// Revokes every writ naming `principal`.
    fn revoke_principal(&self, principal: &str) -> Result<(), StoreError>;
    /// Records that `child`, held by `principal`, was issued under `parent`, held by
    /// `parent_principal`. Durable before it returns.
    fn record_link(
        &self,
        child: &Jti,
        parent: &Jti,
        principal: &str,
        parent_principal: &str,
    ) -> Result<(), StoreError>;
    /// The links above and including `jti`, root-most first: each writ, its holder and its
    /// parent's holder. Empty for a root.
    fn ancestry(&self, jti: &Jti) -> Result<Vec<(Jti, String, String)>, StoreError>;
    /// Forgets consumed ids whose writs expired (plus skew) before `now`; how many.
    fn purge(&self, now: UnixTime) -> Result<usize, StoreError>;
}
