//! Revocation by an administrator: a writ (and so its descendants), a principal, a signing
//! key, or a policy digest (retired). It holds
//! from the moment it commits: consumption reads revocations in its own transaction.

use serde::{Deserialize, Serialize};
use serde_json::json;
use writ_core::{Jti, Sha256Digest};
use writ_store::{Principal, Role};

use crate::authority::Authority;
use crate::error::ApiError;

/// What to revoke: exactly one of `writ` (a `jti`), `principal`, `key` (a signing key's
/// `kid`) or `policy` (a policy set digest, which retires it).
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// A writ id; its descendants die with it.
    #[serde(default)]
    pub writ: Option<String>,
    /// A principal; every writ naming it dies.
    #[serde(default)]
    pub principal: Option<String>,
    /// A signing key; every writ it signed dies (`unknown_key`).
    #[serde(default)]
    pub key: Option<String>,
    /// A policy set digest; every writ issued under it dies (`policy_mismatch`).
    #[serde(default)]
    pub policy: Option<String>,
    /// Why, for the log.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The revocation's entry in the log.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct RevokeResponse {
    /// Index of the `revocation` entry.
    pub log_index: u64,
}

impl Authority {
    /// Revokes as `caller` (an admin). Blocking.
    pub fn revoke(
        &self,
        caller: &Principal,
        request: &RevokeRequest,
        now: u64,
    ) -> Result<RevokeResponse, ApiError> {
        if caller.role != Role::Admin {
            return Err(ApiError::Forbidden(caller.role.as_str()));
        }
        let (kind, target) = match (
            &request.writ,
            &request.principal,
            &request.key,
            &request.policy,
        ) {
            (Some(jti), None, None, None) => {
                let id = Jti::parse(jti)
                    .ok_or_else(|| ApiError::BadRequest(format!("`{jti}` is not a writ id")))?;
                self.replay().revoke_writ(&id)?;
                ("writ", jti.clone())
            }
            (None, Some(name), None, None) => {
                self.replay().revoke_principal(name)?;
                ("principal", name.clone())
            }
            (None, None, Some(kid), None) => {
                self.revoke_key(caller, kid, now)?;
                ("key", kid.clone())
            }
            (None, None, None, Some(digest)) => {
                let parsed = Sha256Digest::from_hex(digest).ok_or_else(|| {
                    ApiError::BadRequest(format!("`{digest}` is not a policy digest"))
                })?;
                self.retire_policy(&parsed, now)?;
                ("policy", parsed.to_hex())
            }
            _ => {
                return Err(ApiError::BadRequest(
                    "name exactly one of `writ`, `principal`, `key` or `policy`".into(),
                ))
            }
        };
        let entry = json!({
            "type": "revocation",
            "kind": kind,
            "target": target,
            "by": caller.name,
            "reason": request.reason,
            "at": now,
        });
        Ok(RevokeResponse {
            log_index: self.append(&entry)?,
        })
    }
}
