//! Requests waiting for human approval: what was asked, what it needs, the votes given, and
//! how it ended.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;
use writ_core::{ApprovalVerdict, Sha256Digest};

use crate::error::StoreError;

/// Where a request stands. It leaves `Pending` once, for one of the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestState {
    /// Waiting for approvals.
    Pending,
    /// The quorum was met and the writ issued.
    Permit,
    /// At quorum the policy in force no longer permitted it.
    Deny,
    /// An approver rejected it.
    Rejected,
    /// Its time ran out.
    Expired,
}

impl RequestState {
    /// Every state.
    pub const ALL: [RequestState; 5] = [
        RequestState::Pending,
        RequestState::Permit,
        RequestState::Deny,
        RequestState::Rejected,
        RequestState::Expired,
    ];

    /// The state's name, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Permit => "permit",
            RequestState::Deny => "deny",
            RequestState::Rejected => "rejected",
            RequestState::Expired => "expired",
        }
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RequestState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RequestState::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown request state `{s}`"))
    }
}

/// One approver's signed approval or rejection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vote {
    /// The approver principal.
    pub approver: String,
    /// Approve or reject.
    pub verdict: ApprovalVerdict,
    /// When the authority received it.
    pub at: u64,
    /// The signed object's `expires`.
    pub expires: u64,
    /// The signature, base64url.
    pub sig: String,
}

/// A request that needs approval.
#[derive(Clone, Debug, PartialEq)]
pub struct ApprovalRequest {
    /// Random id, base64url.
    pub id: String,
    /// Who asked.
    pub principal: String,
    /// The authorize request as received (JSON), decided again at quorum.
    pub request: Value,
    /// The digest approvers sign (writ-core's `RequestTerms::digest`).
    pub request_sha256: Sha256Digest,
    /// How many distinct approvers must approve.
    pub approvals_required: u32,
    /// The group they must belong to.
    pub approver_group: String,
    /// When it was asked.
    pub created_at: u64,
    /// When it expires if not settled.
    pub expires_at: u64,
    /// Where it stands.
    pub state: RequestState,
    /// How it ended (the answer to give its requester), once settled.
    pub outcome: Option<Value>,
    /// The votes, oldest first.
    pub votes: Vec<Vote>,
}

/// Where requests pending approval live. A request leaves `pending` once: every settlement is
/// conditional on it still being pending.
pub trait ApprovalStore: Send + Sync + std::fmt::Debug {
    /// Records a new pending request.
    fn create(&self, request: &ApprovalRequest) -> Result<(), StoreError>;
    /// The request `id` with its votes.
    fn get(&self, id: &str) -> Result<Option<ApprovalRequest>, StoreError>;
    /// The requests in `state`, oldest first.
    fn list(&self, state: RequestState) -> Result<Vec<ApprovalRequest>, StoreError>;
    /// Records a vote on a pending request: [`StoreError::RequestClosed`] when settled,
    /// [`StoreError::DuplicateVote`] when the approver (or the signature) voted already.
    fn vote(&self, id: &str, vote: &Vote) -> Result<(), StoreError>;
    /// Changes what a pending request still needs.
    fn require(&self, id: &str, approvals: u32, group: &str) -> Result<(), StoreError>;
    /// Settles a pending request; false when it was settled already.
    fn settle(&self, id: &str, state: RequestState, outcome: &Value) -> Result<bool, StoreError>;
    /// The pending requests whose time ran out by `now`.
    fn due(&self, now: u64) -> Result<Vec<String>, StoreError>;
    /// Replaces the outcome of a settled request (a pending one is left alone).
    fn record_outcome(&self, id: &str, outcome: &Value) -> Result<(), StoreError>;
}
