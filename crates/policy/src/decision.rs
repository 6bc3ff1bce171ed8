//! What a policy set says about a request: permit, deny with reasons, or pending approval.

use std::fmt;

use serde::{Deserialize, Serialize};
use writ_core::Delegation;

/// The outcome of evaluating a request.
///
/// In JSON it is an object tagged by `decision`: `{"decision":"permit","policy_ids":[…],
/// "lifetime_secs":60,"uses":1}`, `{"decision":"deny","reasons":[{"code":"forbid",…}]}` or
/// `{"decision":"pending","policy_ids":[…],"approvals_required":2,"approver_group":"finance",
/// "lifetime_secs":60,"uses":1}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "lowercase", deny_unknown_fields)]
pub enum Decision {
    /// Issue a writ.
    Permit {
        /// The permit policies that decided (the writ's `pol.ids`), in source order.
        policy_ids: Vec<String>,
        /// The writ's lifetime: the smallest `@lifetime` of those policies, else the
        /// default, never above the maximum (see [`Limits`]).
        lifetime_secs: u64,
        /// The writ's `uses`: the smallest `@uses` of those policies, else 1, never above the
        /// maximum.
        uses: u32,
        /// What the holder may delegate (`del`), when every deciding policy grants the same.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delegation: Option<Delegation>,
    },
    /// Refuse, saying why.
    Deny {
        /// Why, never empty.
        reasons: Vec<Reason>,
    },
    /// Only permits that need approval matched: wait for the approvals, then evaluate again
    /// with them ([`PolicySet::evaluate_with_approvals`](crate::PolicySet::evaluate_with_approvals)).
    Pending {
        /// The permit policies that need approval, in source order.
        policy_ids: Vec<String>,
        /// How many distinct approvers, other than the requester, must approve.
        approvals_required: u32,
        /// The group they must be members of.
        approver_group: String,
        /// The writ's lifetime once approved, as for a permit by those policies.
        lifetime_secs: u64,
        /// The writ's `uses` once approved: part of what approvers approve.
        uses: u32,
    },
}

impl Decision {
    /// A denial for one reason.
    pub fn deny(reason: Reason) -> Self {
        Decision::Deny {
            reasons: vec![reason],
        }
    }

    /// `permit`, `deny` or `pending`, as in JSON and in the log.
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Permit { .. } => "permit",
            Decision::Deny { .. } => "deny",
            Decision::Pending { .. } => "pending",
        }
    }

    /// Whether this is a permit.
    pub fn is_permit(&self) -> bool {
        matches!(self, Decision::Permit { .. })
    }

    /// The policies this decision names: the deciding permits, the approval policies, or the
    /// forbids that matched.
    pub fn policy_ids(&self) -> Vec<&str> {
        match self {
            Decision::Permit { policy_ids, .. } | Decision::Pending { policy_ids, .. } => {
                policy_ids.iter().map(String::as_str).collect()
            }
            Decision::Deny { reasons } => reasons.iter().filter_map(Reason::policy).collect(),
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Permit {
                policy_ids,
                lifetime_secs,
                uses,
                ..
            } => write!(
                f,
                "permit by {} ({lifetime_secs} s, {uses} use{})",
                ids(policy_ids),
                if *uses == 1 { "" } else { "s" }
            ),
            Decision::Deny { reasons } => {
                f.write_str("deny: ")?;
                for (i, r) in reasons.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{r}")?;
                }
                Ok(())
            }
            Decision::Pending {
                policy_ids,
                approvals_required,
                approver_group,
                ..
            } => write!(
                f,
                "pending by {}: {approvals_required} approval{} from `{approver_group}`",
                ids(policy_ids),
                if *approvals_required == 1 { "" } else { "s" }
            ),
        }
    }
}

fn ids(ids: &[String]) -> String {
    ids.iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a request was denied. In JSON: `{"code":"forbid","policy":"forbid-rm","message":…}`;
/// [`Reason::code`] is the stable part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case", deny_unknown_fields)]
pub enum Reason {
    /// A forbid policy matched; forbids win over any permit.
    Forbid {
        /// The forbid's id.
        policy: String,
        /// Its `@reason` annotation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// No permit policy matched (and nothing failed).
    NoPermit,
    /// The schema declares no such action.
    UnknownAction {
        /// The action asked for.
        action: String,
    },
    /// The resource's form names no resource type the schema declares, or none that the
    /// action applies to.
    UnknownResource {
        /// The resource asked for.
        resource: String,
    },
    /// The request does not fit the schema (argument types, context, principal).
    InvalidRequest {
        /// What is wrong.
        detail: String,
    },
    /// A policy could not be evaluated for this request (a missing attribute, an overflow…).
    /// Any such error denies, even when another permit matched.
    EvaluationError {
        /// The policy that failed.
        policy: String,
        /// Cedar's message.
        detail: String,
    },
    /// The parent writ presented for a delegated request does not hold up: `denial` is the
    /// verifier's code (`lineage_inconsistency`, `revoked_authorization`, `expired`,
    /// `invalid_signature`, ...).
    Parent {
        /// The denial code.
        denial: String,
        /// Why.
        detail: String,
    },
    /// A deciding permit policy carries an annotation writ cannot read.
    InvalidAnnotation {
        /// The policy.
        policy: String,
        /// What is wrong.
        detail: String,
    },
}

impl Reason {
    /// The stable code: `forbid`, `no_permit`, `unknown_action`, `unknown_resource`,
    /// `invalid_request`, `evaluation_error`, `invalid_annotation` or `parent`.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Forbid { .. } => "forbid",
            Reason::NoPermit => "no_permit",
            Reason::UnknownAction { .. } => "unknown_action",
            Reason::UnknownResource { .. } => "unknown_resource",
            Reason::InvalidRequest { .. } => "invalid_request",
            Reason::EvaluationError { .. } => "evaluation_error",
            Reason::InvalidAnnotation { .. } => "invalid_annotation",
            Reason::Parent { .. } => "parent",
        }
    }

    /// The policy this reason names, if any.
    pub fn policy(&self) -> Option<&str> {
        match self {
            Reason::Forbid { policy, .. }
            | Reason::EvaluationError { policy, .. }
            | Reason::InvalidAnnotation { policy, .. } => Some(policy),
            _ => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Forbid {
                policy,
                message: Some(m),
            } => write!(f, "forbidden by `{policy}`: {m}"),
            Reason::Forbid {
                policy,
                message: None,
            } => write!(f, "forbidden by `{policy}`"),
            Reason::NoPermit => f.write_str("no permit policy matched"),
            Reason::UnknownAction { action } => write!(f, "unknown action `{action}`"),
            Reason::UnknownResource { resource } => {
                write!(f, "unknown resource type for `{resource}`")
            }
            Reason::InvalidRequest { detail } => write!(f, "invalid request: {detail}"),
            Reason::EvaluationError { policy, detail } => {
                write!(f, "policy `{policy}` failed: {detail}")
            }
            Reason::InvalidAnnotation { policy, detail } => {
                write!(f, "policy `{policy}` has an invalid annotation: {detail}")
            }
            Reason::Parent { denial, detail } => write!(f, "parent writ: {denial}: {detail}"),
        }
    }
}

/// The authority's bounds on what policy may grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// A writ's lifetime when no deciding policy sets `@lifetime` (DESIGN.md: 60 s).
    pub default_lifetime_secs: u64,
    /// The longest lifetime any policy may grant; the default is capped by it too.
    pub max_lifetime_secs: u64,
    /// The most uses any policy may grant.
    pub max_uses: u32,
}

impl Limits {
    /// The default lifetime for a writ, 60 s.
    pub const DEFAULT_LIFETIME_SECS: u64 = 60;
    /// The default maximum lifetime, 300 s.
    pub const DEFAULT_MAX_LIFETIME_SECS: u64 = 300;
    /// The default maximum number of uses, 10.
    pub const DEFAULT_MAX_USES: u32 = 10;

    /// `asked` (or the default) within `1..=max_lifetime_secs`.
    pub fn lifetime(&self, asked: Option<u64>) -> u64 {
        let max = self.max_lifetime_secs.max(1);
        asked.unwrap_or(self.default_lifetime_secs).clamp(1, max)
    }

    /// `asked` (or 1) within `1..=max_uses`.
    pub fn uses(&self, asked: Option<u32>) -> u32 {
        asked.unwrap_or(1).clamp(1, self.max_uses.max(1))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            default_lifetime_secs: Self::DEFAULT_LIFETIME_SECS,
            max_lifetime_secs: Self::DEFAULT_MAX_LIFETIME_SECS,
            max_uses: Self::DEFAULT_MAX_USES,
        }
    }
}

/// A principal that approved a pending request, with the groups the authority's registry
/// puts it in. Checking the approval's signature is the authority's job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approver {
    /// The approver's principal id.
    pub id: String,
    /// Its groups.
    #[serde(default)]
    pub groups: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_clamp() {
        let l = Limits::default();
        assert_eq!(l.lifetime(None), 60);
        assert_eq!(l.lifetime(Some(30)), 30);
        assert_eq!(l.lifetime(Some(3600)), 300);
        assert_eq!(l.uses(None), 1);
        assert_eq!(l.uses(Some(50)), 10);
        let tight = Limits {
            default_lifetime_secs: 60,
            max_lifetime_secs: 20,
            max_uses: 0,
        };
        assert_eq!(tight.lifetime(None), 20);
        assert_eq!(tight.uses(Some(3)), 1);
    }

    #[test]
    fn json_forms() {
        let d = Decision::deny(Reason::Forbid {
            policy: "forbid-rm".into(),
            message: None,
        });
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::json!({"decision": "deny", "reasons": [{"code": "forbid", "policy": "forbid-rm"}]})
        );
        let d = Decision::deny(Reason::NoPermit);
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"decision":"deny","reasons":[{"code":"no_permit"}]}"#
        );
        let back: Decision = serde_json::from_value(serde_json::to_value(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }
}
