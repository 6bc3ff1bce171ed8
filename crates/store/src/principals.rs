//! Principals: who may call the authority, in which role, and the hash of their bearer token.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use writ_core::{Jwk, Sha256Digest, VerifyingKey};

use crate::error::StoreError;

/// What a principal may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Asks for writs.
    Agent,
    /// A gate: the audience of writs; consumes them and sends receipts.
    Executor,
    /// Approves or rejects pending requests.
    Approver,
    /// Registers principals, applies policy, revokes, appends notes.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Agent, Role::Executor, Role::Approver, Role::Admin];

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Executor => "executor",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role `{s}` (agent, executor, approver, admin)"))
    }
}

/// A registered principal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Unique name; a writ's `sub` or `aud`.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Groups, for policy.
    pub groups: Vec<String>,
    /// Disabled principals cannot authenticate.
    pub disabled: bool,
    /// Seconds since the epoch when it was registered.
    pub created_at: u64,
}

/// Whether a principal name is acceptable: 1–128 characters of letters, digits and `._-@:/`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@:/".contains(c))
}

/// Where principals live.
pub trait PrincipalStore: Send + Sync + std::fmt::Debug {
    /// Registers a principal whose bearer token hashes to `token_sha256`.
    fn add(
        &self,
        name: &str,
        role: Role,
        groups: &[String],
        token_sha256: &Sha256Digest,
        now: u64,
    ) -> Result<Principal, StoreError>;
    /// The enabled principal whose token hashes to `token_sha256`, if any.
    fn authenticate(&self, token_sha256: &Sha256Digest) -> Result<Option<Principal>, StoreError>;
    /// The principal named `name`.
    fn get(&self, name: &str) -> Result<Option<Principal>, StoreError>;
    /// Every principal, by name.
    fn list(&self) -> Result<Vec<Principal>, StoreError>;
    /// Disables a principal; whether it existed.
    fn disable(&self, name: &str) -> Result<bool, StoreError>;
    /// Sets the key the approver `name` signs approvals with.
    fn set_approval_key(&self, name: &str, key: &VerifyingKey) -> Result<(), StoreError>;
    /// The key the approver `name` signs approvals with, if registered.
    fn approval_key(&self, name: &str) -> Result<Option<VerifyingKey>, StoreError>;
}

/// The stored form of principals, the same in every backend: names checked before they are
/// written, groups and approval keys as JSON text, and what is read back checked again.
pub(crate) mod stored {
    use super::*;

    /// Refuses a principal or group name [`valid_name`] does not accept.
    pub(crate) fn check_names(name: &str, groups: &[String]) -> Result<(), StoreError> {
        if !valid_name(name) {
            return Err(StoreError::InvalidName(name.to_owned()));
        }
        match groups.iter().find(|g| !valid_name(g)) {
            Some(bad) => Err(StoreError::InvalidName(bad.clone())),
            None => Ok(()),
        }
    }

    /// Groups as stored.
    pub(crate) fn groups(groups: &[String]) -> String {
        serde_json::to_string(groups).unwrap_or_else(|_| "[]".into())
    }

    /// The principal an insert added, or `PrincipalExists` when it added nothing (the name or
    /// token was taken).
    pub(crate) fn added(
        name: &str,
        role: Role,
        groups: &[String],
        inserted: bool,
        now: u64,
    ) -> Result<Principal, StoreError> {
        if !inserted {
            return Err(StoreError::PrincipalExists(name.to_owned()));
        }
        Ok(Principal {
            name: name.to_owned(),
            role,
            groups: groups.to_vec(),
            disabled: false,
            created_at: now,
        })
    }

    /// A principal read back from its stored columns.
    pub(crate) fn principal(
        name: String,
        role: &str,
        groups: &str,
        disabled: bool,
        created_at: u64,
    ) -> Result<Principal, StoreError> {
        let role = role
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("principal `{name}`: {e}")))?;
        let groups = serde_json::from_str(groups)
            .map_err(|e| StoreError::Corrupt(format!("principal `{name}` groups: {e}")))?;
        Ok(Principal {
            name,
            role,
            groups,
            disabled,
            created_at,
        })
    }

    /// An approver's key as stored (its public JWK).
    pub(crate) fn approval_key(name: &str, key: &VerifyingKey) -> Result<String, StoreError> {
        serde_json::to_string(&key.to_jwk())
            .map_err(|e| StoreError::Corrupt(format!("approval key of `{name}`: {e}")))
    }

    /// An approver's key read back, checked as any JWK is.
    pub(crate) fn read_approval_key(name: &str, text: &str) -> Result<VerifyingKey, StoreError> {
        serde_json::from_str::<Jwk>(text)
            .map_err(|e| e.to_string())
            .and_then(|jwk| VerifyingKey::from_jwk(&jwk).map_err(|e| e.to_string()))
            .map_err(|e| StoreError::Corrupt(format!("approval key of `{name}`: {e}")))
    }
}
