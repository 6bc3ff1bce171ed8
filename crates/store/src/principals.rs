//! Principals: who may call the authority, in which role, and the hash of their bearer token.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use writ_core::{Sha256Digest, VerifyingKey};

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
