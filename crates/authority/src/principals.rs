//! Registering principals at run time (admins): a gate registers its executor this way. The
//! bearer token is returned once; only its SHA-256 is stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use writ_core::Sha256Digest;
use writ_store::{Principal, Role};

use crate::authority::{random_bytes, Authority};
use crate::error::ApiError;
use crate::keys::require_admin;

/// A principal to register.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrincipalRequest {
    /// 1 to 128 letters, digits or `._-@:/`.
    pub name: String,
    /// `agent`, `executor`, `approver` or `admin`.
    #[schema(value_type = String)]
    pub role: Role,
    /// Groups policy can see (`principal.groups`).
    #[serde(default)]
    pub groups: Vec<String>,
    /// For an approver: the Ed25519 public key (JWK) its approvals are signed with.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub approval_key: Option<writ_core::Jwk>,
}

/// The registered principal and its bearer token, shown this once.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct PrincipalResponse {
    /// Its name.
    pub name: String,
    /// Its role.
    #[schema(value_type = String)]
    pub role: Role,
    /// Its groups.
    pub groups: Vec<String>,
    /// Its bearer token; the authority keeps only the SHA-256.
    pub token: String,
}

/// Every principal (never a token).
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct PrincipalsResponse {
    /// By name.
    #[schema(value_type = Vec<Object>)]
    pub principals: Vec<Principal>,
}

impl Authority {
    /// Registers a principal (admins). Blocking.
    pub fn register_principal(
        &self,
        caller: &Principal,
        request: &PrincipalRequest,
        now: u64,
    ) -> Result<PrincipalResponse, ApiError> {
        require_admin(caller)?;
        let approval_key = match (&request.approval_key, request.role) {
            (None, _) => None,
            (Some(jwk), Role::Approver) => Some(
                writ_core::VerifyingKey::from_jwk(jwk)
                    .map_err(|e| ApiError::BadRequest(format!("approval_key: {e}")))?,
            ),
            (Some(_), role) => {
                return Err(ApiError::BadRequest(format!(
                    "approval_key is for approvers, not for role `{role}`"
                )))
            }
        };
        let token = format!("writ_{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()?));
        let principal = self.principals().add(
            &request.name,
            request.role,
            &request.groups,
            &Sha256Digest::of(token.as_bytes()),
            now,
        )?;
        if let Some(key) = &approval_key {
            self.principals().set_approval_key(&principal.name, key)?;
        }
        tracing::info!(name = %principal.name, role = principal.role.as_str(), by = %caller.name, "principal registered");
        Ok(PrincipalResponse {
            name: principal.name,
            role: principal.role,
            groups: principal.groups,
            token,
        })
    }

    /// Every principal (admins). Blocking.
    pub fn list_principals(&self, caller: &Principal) -> Result<PrincipalsResponse, ApiError> {
        require_admin(caller)?;
        Ok(PrincipalsResponse {
            principals: self.principals().list()?,
        })
    }
}
