//! Key rotation and retirement: a new writ-signing key is announced (published in the JWKS)
//! before it signs; the key it supersedes leaves once its last writ expired; a revoked key
//! leaves at once. Each step is a `key` entry in the log.

use serde::{Deserialize, Serialize};
use serde_json::json;
use writ_core::{SigningKey, DEFAULT_SKEW_SECS};
use writ_store::{Principal, Role};

use crate::authority::{random_bytes, Authority};
use crate::error::ApiError;
use crate::keyring::{KeyRing, KeyState};

/// The answer to a rotation.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RotateResponse {
    /// The new key's RFC 7638 thumbprint.
    pub kid: String,
    /// From when it signs; it is in the JWKS already.
    pub activates_at: u64,
    /// Index of its `key` entry.
    pub log_index: u64,
}

/// Every usable key and its state.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeysResponse {
    /// Oldest activation first.
    pub keys: Vec<KeyState>,
}

impl Authority {
    /// How long a superseded key stays published after its successor activates: the longest
    /// a writ it signed can still be valid.
    fn linger_secs(&self) -> u64 {
        self.config()
            .max_lifetime_secs
            .saturating_add(DEFAULT_SKEW_SECS)
    }

    /// Adds a new signing key, published now and signing after the configured announcement
    /// period. Admins only. Blocking.
    pub fn rotate_key(&self, caller: &Principal, now: u64) -> Result<RotateResponse, ApiError> {
        require_admin(caller)?;
        let _admin = self.admin_lock();
        let activates_at = now.saturating_add(self.config().key_announce_secs);
        self.add_key(caller, now, activates_at)
    }

    fn add_key(
        &self,
        caller: &Principal,
        now: u64,
        activates_at: u64,
    ) -> Result<RotateResponse, ApiError> {
        let key = SigningKey::from_seed(&random_bytes::<32>()?);
        // Logged before it is published: no key signs that the log does not name.
        let log_index = self.append(&json!({
            "type": "key",
            "event": "added",
            "kid": key.kid().to_string(),
            "activates_at": activates_at,
            "by": caller.name,
            "at": now,
        }))?;
        self.key_store().add(&key, now, activates_at)?;
        self.set_ring(KeyRing::new(self.key_store().list()?));
        tracing::info!(kid = %key.kid(), activates_at, "signing key added");
        Ok(RotateResponse {
            kid: key.kid().to_string(),
            activates_at,
            log_index,
        })
    }

    /// Revokes a signing key: from now on it neither signs nor verifies (`unknown_key`). When
    /// it was the active key, a new one takes over at once. Admins only. Blocking.
    pub(crate) fn revoke_key(
        &self,
        caller: &Principal,
        kid: &str,
        now: u64,
    ) -> Result<(), ApiError> {
        let _admin = self.admin_lock();
        let was_signer = self
            .ring()
            .signer(now)
            .is_some_and(|k| k.kid().as_str() == kid);
        if !self.key_store().revoke(kid, now)? {
            return Err(ApiError::NotFound(format!(
                "no signing key `{kid}` that is not revoked already"
            )));
        }
        let ring = KeyRing::new(self.key_store().list()?);
        let orphaned = ring.signer(now).is_none();
        self.set_ring(ring);
        if was_signer || orphaned {
            self.add_key(caller, now, now)?;
        }
        Ok(())
    }

    /// The keys and their states at `now`. Admins only.
    pub fn key_states(&self, caller: &Principal, now: u64) -> Result<KeysResponse, ApiError> {
        require_admin(caller)?;
        Ok(KeysResponse {
            keys: self.ring().states(now, self.linger_secs()),
        })
    }

    /// Periodic upkeep: superseded keys whose last writ expired leave the JWKS (logged as
    /// `key` `retired`), and expired consumption records are purged. Blocking.
    pub fn maintain(&self, now: u64) -> Result<(), ApiError> {
        if self.is_shared() {
            self.refresh_shared()?;
        }
        let expired = self.ring().expired(now, self.linger_secs());
        if !expired.is_empty() {
            let _admin = self.admin_lock();
            for kid in expired {
                if self.key_store().mark_removed(kid.as_str(), now)? {
                    self.append(&json!({
                        "type": "key",
                        "event": "retired",
                        "kid": kid.to_string(),
                        "at": now,
                    }))?;
                    tracing::info!(kid = %kid, "signing key retired: its last writ has expired");
                }
            }
            self.set_ring(KeyRing::new(self.key_store().list()?));
        }
        self.replay().purge(writ_core::UnixTime(now))?;
        self.expire_requests(now)?;
        Ok(())
    }
}

pub(crate) fn require_admin(caller: &Principal) -> Result<(), ApiError> {
    if caller.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden(caller.role.as_str()))
    }
}

/// Runs [`Authority::maintain`] every second until the task is dropped; failures are logged
/// and retried (nothing is issued on their account).
pub async fn upkeep(authority: std::sync::Arc<Authority>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let task = authority.clone();
        let result = crate::http::blocking(move || {
            let now = crate::http::unix_now()?;
            task.maintain(now)
        })
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "upkeep failed; retrying");
        }
    }
}
