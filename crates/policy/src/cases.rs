//! Decision cases: requests with the decisions a policy set must reach, run as tests.
//!
//! A cases file is a JSON array:
//!
//! ```json
//! [{"name": "git status is fine",
//!   "request": {"principal": {"id": "build-agent", "role": "agent", "groups": []},
//!               "action": "exec", "resource": "/usr/bin/git",
//!               "args": {"argv": ["git", "status"], "cwd": "/workspace"}, "context": {}},
//!   "expect": "permit",
//!   "policies": ["allow-dev-tools"]}]
//! ```
//!
//! `expect` is `permit`, `deny` or `pending`. Optional checks: `policies` (the deciding
//! permits, the pending approval policies, or the forbids that matched: as a set), `reason`
//! (a denial must carry a reason with this code, e.g. `no_permit`), `lifetime_secs` and
//! `uses` (of a permit), `approvals_required` and `approver_group` (of a pending decision).
//! `approvals` (a list of `{"id","groups"}`) evaluates the request as released by those
//! approvers.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use writ_core::canonical;

use crate::decision::{Approver, Decision, Limits};
use crate::error::Error;
use crate::request::Request;
use crate::set::PolicySet;

/// One decision case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case shows.
    pub name: String,
    /// The request.
    pub request: Request,
    /// The decision it must reach.
    pub expect: Expected,
    /// The policies the decision must name, as a set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<String>>,
    /// A reason code the denial must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The permit's lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_secs: Option<u64>,
    /// The permit's uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<u32>,
    /// The pending decision's number of approvals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals_required: Option<u32>,
    /// The pending decision's approver group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver_group: Option<String>,
    /// Evaluate as released by these approvers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<Vec<Approver>>,
}

/// The decision a case expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expected {
    /// A permit.
    Permit,
    /// A denial.
    Deny,
    /// Pending approval.
    Pending,
}

impl Expected {
    /// `permit`, `deny` or `pending`.
    pub fn as_str(self) -> &'static str {
        match self {
            Expected::Permit => "permit",
            Expected::Deny => "deny",
            Expected::Pending => "pending",
        }
    }
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// What it expected.
    pub expected: Expected,
    /// The decision reached.
    pub decision: Decision,
    /// Each way the decision differs from the expectation; empty when the case passed.
    pub mismatches: Vec<String>,
}

impl CaseResult {
    /// Whether the decision is what the case expects.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

impl fmt::Display for CaseResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.passed() {
            write!(f, "ok    {}", self.name)
        } else {
            write!(
                f,
                "FAIL  {}: {} (got {})",
                self.name,
                self.mismatches.join("; "),
                self.decision
            )
        }
    }
}

/// Reads a cases file (duplicate JSON keys and unknown fields are refused).
pub fn parse_cases(text: &str) -> Result<Vec<Case>, Error> {
    let value = canonical::parse_strict(text).map_err(|e| Error::Cases(e.to_string()))?;
    serde_json::from_value(value).map_err(|e| Error::Cases(e.to_string()))
}

/// Runs every case against `set` within `limits`.
pub fn run_cases(set: &PolicySet, cases: &[Case], limits: &Limits) -> Vec<CaseResult> {
    cases
        .iter()
        .map(|case| run_case(set, case, limits))
        .collect()
}

fn run_case(set: &PolicySet, case: &Case, limits: &Limits) -> CaseResult {
    let decision = match &case.approvals {
        Some(approvals) => set.evaluate_with_approvals(&case.request, limits, approvals),
        None => set.evaluate(&case.request, limits),
    };
    let mut mismatches = Vec::new();
    if decision.as_str() != case.expect.as_str() {
        mismatches.push(format!("expected {}", case.expect.as_str()));
    }
    if let Some(expected) = &case.policies {
        let want: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
        let got: BTreeSet<&str> = decision.policy_ids().into_iter().collect();
        if want != got {
            mismatches.push(format!("expected policies {want:?}, got {got:?}"));
        }
    }
    if let Some(code) = &case.reason {
        let found = match &decision {
            Decision::Deny { reasons } => reasons.iter().any(|r| r.code() == code),
            _ => false,
        };
        if !found {
            mismatches.push(format!("expected a denial with reason `{code}`"));
        }
    }
    match &decision {
        Decision::Permit {
            lifetime_secs,
            uses,
            ..
        } => {
            check(
                &mut mismatches,
                "lifetime_secs",
                case.lifetime_secs,
                *lifetime_secs,
            );
            check(&mut mismatches, "uses", case.uses, *uses);
        }
        Decision::Pending {
            approvals_required,
            approver_group,
            ..
        } => {
            check(
                &mut mismatches,
                "approvals_required",
                case.approvals_required,
                *approvals_required,
            );
            check(
                &mut mismatches,
                "approver_group",
                case.approver_group.as_deref(),
                approver_group.as_str(),
            );
        }
        Decision::Deny { .. } => {}
    }
    CaseResult {
        name: case.name.clone(),
        expected: case.expect,
        decision,
        mismatches,
    }
}

fn check<T: PartialEq + fmt::Debug>(out: &mut Vec<String>, what: &str, want: Option<T>, got: T) {
    if let Some(want) = want {
        if want != got {
            out.push(format!("expected {what} {want:?}, got {got:?}"));
        }
    }
}
