//! Revocation by an administrator: a writ (and so its descendants) or a principal. It holds
//! from the moment it commits: consumption reads revocations in its own transaction.

use serde::{Deserialize, Serialize};
use serde_json::json;
use writ_core::Jti;
use writ_store::{Principal, Role};

use crate::authority::Authority;
use crate::error::ApiError;

/// What to revoke: exactly one of `writ` (a `jti`) or `principal`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// A writ id; its descendants die with it.
    #[serde(default)]
    pub writ: Option<String>,
    /// A principal; every writ naming it dies.
    #[serde(default)]
    pub principal: Option<String>,
    /// Why, for the log.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The revocation's entry in the log.
#[derive(Clone, Debug, Deserialize, Serialize)]
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
        let (kind, target) = match (&request.writ, &request.principal) {
            (Some(jti), None) => {
                let id = Jti::parse(jti)
                    .ok_or_else(|| ApiError::BadRequest(format!("`{jti}` is not a writ id")))?;
                self.replay().revoke_writ(&id)?;
                ("writ", jti.clone())
            }
            (None, Some(name)) => {
                self.replay().revoke_principal(name)?;
                ("principal", name.clone())
            }
            _ => {
                return Err(ApiError::BadRequest(
                    "name exactly one of `writ` or `principal`".into(),
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
