//! The claims of a writ, exactly as DESIGN.md lists them. Unknown claims are refused, and
//! serde's derived code refuses a claim given twice.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::digest::Sha256Digest;
use crate::keys::KeyId;

/// The claims of a writ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The authority's identifier.
    pub iss: String,
    /// The initiator: the authenticated principal that asked.
    pub sub: String,
    /// The one executor (gate principal) that may honour the writ.
    pub aud: String,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Not before, seconds since the epoch.
    pub nbf: u64,
    /// Expires at, seconds since the epoch.
    pub exp: u64,
    /// 128-bit random id.
    pub jti: Jti,
    /// What it authorizes.
    pub scope: Scope,
    /// The policy set that decided.
    pub pol: PolicyRef,
    /// How many executions it allows (at least 1).
    pub uses: u32,
    /// Proof-of-possession key of the executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// SHA-256 of the canonical runtime-environment measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Sha256Digest>,
    /// Where this writ sits in a delegation tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lin: Option<Lineage>,
    /// What the holder may delegate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub del: Option<Delegation>,
    /// Purpose, ticket and approvals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gov: Option<Governance>,
}

/// `scope`: the exact action, resource and arguments a writ authorizes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// The action, e.g. `exec` or `tools/call`.
    pub action: String,
    /// The resource, e.g. an executable's canonical path.
    pub resource: String,
    /// SHA-256 of the RFC 8785 canonical JSON of the arguments.
    pub args_sha256: Sha256Digest,
}

/// `pol`: the policy set that decided and the policies that permitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRef {
    /// Digest of the policy set.
    pub digest: Sha256Digest,
    /// Ids of the permitting policies.
    pub ids: Vec<String>,
}

/// `cnf`: the executor key the writ is bound to (RFC 7800 style, RFC 7638 thumbprint).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirmation {
    /// RFC 7638 thumbprint of the executor's Ed25519 key, base64url.
    pub jkt: KeyId,
}

/// `lin`: the delegation link of a child writ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lineage {
    /// `jti` of the parent writ.
    pub parent: Jti,
    /// SHA-256 of the parent's compact serialization.
    pub parent_sha256: Sha256Digest,
    /// `jti` of the root of the tree.
    pub root: Jti,
    /// Distance from the root (a direct child has depth 1).
    pub depth: u32,
}

/// `del`: what the holder may delegate. Patterns are as in Cedar `like`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delegation {
    /// Action patterns a child may carry.
    pub actions: Vec<String>,
    /// Resource patterns a child may carry.
    pub resources: Vec<String>,
    /// The greatest `lin.depth` a descendant may have.
    pub max_depth: u32,
}

/// `gov`: why the writ exists and who released it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Governance {
    /// The stated purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// A ticket reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// The approvals that released the writ.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
}

/// One human approval carried in `gov.approvals`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The approver principal.
    pub approver: String,
    /// When it was given, seconds since the epoch.
    pub at: u64,
    /// The approver's Ed25519 signature, base64url.
    pub sig: String,
}

/// A writ id: 128 random bits, base64url without padding (22 characters).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Jti([u8; 16]);

impl Jti {
    /// Wraps 16 random bytes; the caller supplies the randomness.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses the base64url form; any other length or spelling is refused.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 22 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(text).ok()?;
        Some(Self(raw.try_into().ok()?))
    }

    /// The base64url form.
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

impl fmt::Display for Jti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64url())
    }
}

impl fmt::Debug for Jti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Jti({})", self.to_base64url())
    }
}

impl Serialize for Jti {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base64url())
    }
}

impl<'de> Deserialize<'de> for Jti {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text)
            .ok_or_else(|| serde::de::Error::custom("expected a 128-bit base64url id"))
    }
}
