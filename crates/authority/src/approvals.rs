//! Human approvals: requests that policy holds until a quorum of approvers signs them.
//!
//! A request leaves `pending` once: issued at quorum (policy evaluated again, with the
//! approvers), denied when that evaluation no longer permits, rejected by one approver, or
//! expired. Every vote and every settlement is logged before it takes effect; votes and
//! settlements run one at a time, so a quorum releases one writ.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use writ_core::{Approval, ApprovalObject, ApprovalVerdict};
use writ_policy::Approver;
use writ_store::{ApprovalRequest, Principal, RequestState, Role, StoreError, Vote};

use crate::authority::{Authority, AuthorizeRequest, AuthorizeResponse, Release};
use crate::error::ApiError;

/// What a pending request stored: the request as asked and the terms approvers approve.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Asked {
    pub(crate) authorize: AuthorizeRequest,
    pub(crate) args_sha256: String,
    pub(crate) cnf: Option<String>,
    pub(crate) env: Option<String>,
    pub(crate) uses: u32,
    pub(crate) lifetime_secs: u64,
    pub(crate) policy_digest: String,
    pub(crate) policy_ids: Vec<String>,
}

/// A signed approval or rejection (`POST /v1/requests/{id}/approvals`).
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSubmission {
    /// `{"type":"writ-approval-v1"|"writ-rejection-v1","authority","request_id",
    /// "request_sha256","expires"}`.
    #[schema(value_type = Object)]
    pub approval: ApprovalObject,
    /// The approver's Ed25519 signature over the object's RFC 8785 canonical JSON,
    /// base64url.
    pub sig: String,
}

/// One approval given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApprovalView {
    /// The approver.
    pub approver: String,
    /// When it was received.
    pub at: u64,
}

/// A request as shown to its requester and to approvers: the exact terms, what it needs, the
/// approvals given and, once settled, how it ended.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RequestView {
    /// The request id.
    pub request_id: String,
    /// The authority's `iss`: what an approval object names as `authority`.
    pub authority: String,
    /// `pending`, `permit`, `deny`, `rejected` or `expired`.
    pub state: String,
    /// Who asked.
    pub principal: String,
    /// The action.
    pub action: String,
    /// The resource.
    pub resource: String,
    /// The exact arguments.
    #[schema(value_type = Object)]
    pub args: Value,
    /// SHA-256 of their canonical JSON.
    pub args_sha256: String,
    /// The executor (`aud`).
    pub audience: String,
    /// The executor key thumbprint the writ binds (`cnf.jkt`).
    pub cnf: Option<String>,
    /// The environment digest the writ binds (`env`).
    pub env: Option<String>,
    /// How many executions the writ allows.
    pub uses: u32,
    /// How long the writ lives once issued.
    pub lifetime_secs: u64,
    /// The stated purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// The digest approvers sign.
    pub request_sha256: String,
    /// How many distinct approvers must approve.
    pub approvals_required: u32,
    /// The group they must belong to.
    pub approver_group: String,
    /// The approvals given.
    pub approvals: Vec<ApprovalView>,
    /// Who rejected it, when rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_by: Option<String>,
    /// When it was asked.
    pub created_at: u64,
    /// When it expires unless settled.
    pub expires_at: u64,
    /// The policy set that held it for approval.
    pub policy_digest: String,
    /// The policies that require approval.
    pub policy_ids: Vec<String>,
    /// On permit, to the requester only: the writ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writ: Option<String>,
    /// On permit: the writ's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// On permit: when the writ expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writ_expires_at: Option<u64>,
    /// On permit or deny: the index of the settling decision in the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u64>,
    /// On deny: why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub reasons: Vec<Value>,
}

/// Pending requests (`GET /v1/requests`).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RequestsResponse {
    /// Oldest first.
    pub requests: Vec<RequestView>,
}

/// Why an approval or rejection is not taken. Each has a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalRefusal {
    /// The requester cannot approve its own request.
    #[error("the requester cannot approve or reject its own request")]
    SelfApproval,
    /// The caller is not in the request's approver group.
    #[error("`{0}` is not a member of the approver group `{1}`")]
    NotAnApprover(String, String),
    /// The caller has no registered approval key.
    #[error("`{0}` has no registered approval key")]
    NoApprovalKey(String),
    /// The approver voted on this request already, or the signature was used before.
    #[error("`{0}` approved or rejected this request already (an approval counts once)")]
    Duplicate(String),
    /// The object names another request, or another request digest.
    #[error("the approval is for another request: {0}")]
    RequestMismatch(String),
    /// The object names another authority.
    #[error("the approval is for authority `{0}`, not this one")]
    WrongAuthority(String),
    /// The object's `expires` has passed.
    #[error("the approval expired at {0}")]
    Expired(u64),
    /// The signature does not verify under the approver's registered key.
    #[error("the approval signature does not verify under `{0}`'s approval key")]
    InvalidSignature(String),
    /// The request is settled already.
    #[error("the request is {0} already")]
    RequestClosed(String),
}

impl ApprovalRefusal {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApprovalRefusal::SelfApproval => "self_approval",
            ApprovalRefusal::NotAnApprover(..) => "not_an_approver",
            ApprovalRefusal::NoApprovalKey(_) => "no_approval_key",
            ApprovalRefusal::Duplicate(_) => "duplicate_approval",
            ApprovalRefusal::RequestMismatch(_) => "request_mismatch",
            ApprovalRefusal::WrongAuthority(_) => "wrong_authority",
            ApprovalRefusal::Expired(_) => "approval_expired",
            ApprovalRefusal::InvalidSignature(_) => "invalid_signature",
            ApprovalRefusal::RequestClosed(_) => "request_closed",
        }
    }

    /// The HTTP status: 403 for who may not, 409 for what happened already, 422 for an
    /// object that does not hold.
    pub fn status(&self) -> u16 {
        match self {
            ApprovalRefusal::SelfApproval
            | ApprovalRefusal::NotAnApprover(..)
            | ApprovalRefusal::NoApprovalKey(_) => 403,
            ApprovalRefusal::Duplicate(_) | ApprovalRefusal::RequestClosed(_) => 409,
            ApprovalRefusal::RequestMismatch(_)
            | ApprovalRefusal::WrongAuthority(_)
            | ApprovalRefusal::Expired(_)
            | ApprovalRefusal::InvalidSignature(_) => 422,
        }
    }
}

fn asked_of(request: &ApprovalRequest) -> Result<Asked, ApiError> {
    serde_json::from_value(request.request.clone()).map_err(|e| {
        ApiError::Internal(format!(
            "stored request `{}` is unreadable: {e}",
            request.id
        ))
    })
}

fn may_view(caller: &Principal, request: &ApprovalRequest) -> bool {
    caller.name == request.principal || matches!(caller.role, Role::Approver | Role::Admin)
}

impl Authority {
    /// The request `id` as `caller` may see it (the writ only to its requester), settled
    /// first if its time ran out or its quorum is in.
    pub fn request_view(
        &self,
        caller: &Principal,
        id: &str,
        now: u64,
    ) -> Result<RequestView, ApiError> {
        let request = self.settle(id, now)?;
        if !may_view(caller, &request) {
            return Err(ApiError::Forbidden(caller.role.as_str()));
        }
        view(&self.config().issuer, caller, &request)
    }

    /// Every pending request, for approvers and admins.
    pub fn pending_requests(
        &self,
        caller: &Principal,
        now: u64,
    ) -> Result<RequestsResponse, ApiError> {
        if !matches!(caller.role, Role::Approver | Role::Admin) {
            return Err(ApiError::Forbidden(caller.role.as_str()));
        }
        self.expire_requests(now)?;
        let requests = self
            .approvals()
            .list(RequestState::Pending)?
            .iter()
            .map(|r| view(&self.config().issuer, caller, r))
            .collect::<Result<_, _>>()?;
        Ok(RequestsResponse { requests })
    }

    /// Takes `caller`'s signed approval or rejection of request `id`: checked, logged,
    /// counted; at quorum the request is decided again and settled.
    pub fn vote(
        &self,
        caller: &Principal,
        id: &str,
        submission: &ApprovalSubmission,
        now: u64,
    ) -> Result<RequestView, ApiError> {
        let _one_at_a_time = self.approvals_lock();
        let request = self.settle_locked(id, now)?;
        let object = &submission.approval;
        let refuse = |r: ApprovalRefusal| Err(ApiError::Approval(r));
        if request.state != RequestState::Pending {
            return refuse(ApprovalRefusal::RequestClosed(request.state.to_string()));
        }
        // Named first, whatever the caller's role: the requester tried to release its own.
        if caller.name == request.principal {
            return refuse(ApprovalRefusal::SelfApproval);
        }
        if caller.role != Role::Approver {
            return Err(ApiError::Forbidden(caller.role.as_str()));
        }
        if !self
            .policy()
            .in_group(&caller.groups, &request.approver_group)
        {
            return refuse(ApprovalRefusal::NotAnApprover(
                caller.name.clone(),
                request.approver_group.clone(),
            ));
        }
        let Some(key) = self.principals().approval_key(&caller.name)? else {
            return refuse(ApprovalRefusal::NoApprovalKey(caller.name.clone()));
        };
        if object.request_id != request.id {
            return refuse(ApprovalRefusal::RequestMismatch(format!(
                "it names request `{}`",
                object.request_id
            )));
        }
        if object.authority != self.config().issuer {
            return refuse(ApprovalRefusal::WrongAuthority(object.authority.clone()));
        }
        if object.request_sha256 != request.request_sha256 {
            return refuse(ApprovalRefusal::RequestMismatch(format!(
                "it approves terms with digest {}, this request's are {}",
                object.request_sha256, request.request_sha256
            )));
        }
        if object.expires <= now {
            return refuse(ApprovalRefusal::Expired(object.expires));
        }
        if object.verify(&submission.sig, &key).is_err() {
            return refuse(ApprovalRefusal::InvalidSignature(caller.name.clone()));
        }
        let seen = request
            .votes
            .iter()
            .any(|v| v.approver == caller.name || v.sig == submission.sig);
        if seen {
            return refuse(ApprovalRefusal::Duplicate(caller.name.clone()));
        }

        let event = match object.verdict {
            ApprovalVerdict::Approve => "approved",
            ApprovalVerdict::Reject => "rejected",
        };
        self.append(&json!({
            "type": "approval",
            "event": event,
            "request_id": request.id,
            "request_sha256": request.request_sha256.to_hex(),
            "authority": object.authority,
            "approver": caller.name,
            "approver_kid": key.kid().to_string(),
            "expires": object.expires,
            "sig": submission.sig,
            "at": now,
        }))?;
        let vote = Vote {
            approver: caller.name.clone(),
            verdict: object.verdict,
            at: now,
            expires: object.expires,
            sig: submission.sig.clone(),
        };
        match self.approvals().vote(&request.id, &vote) {
            Ok(()) => {}
            Err(StoreError::DuplicateVote(who)) => {
                return refuse(ApprovalRefusal::Duplicate(who));
            }
            Err(StoreError::RequestClosed(state)) => {
                return refuse(ApprovalRefusal::RequestClosed(state));
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(request = %request.id, approver = %caller.name, event, "approval request voted");
        if object.verdict == ApprovalVerdict::Reject
            && self.approvals().settle(
                &request.id,
                RequestState::Rejected,
                &json!({"rejected_by": caller.name}),
            )?
        {
            self.announce_settled();
        }
        let request = self.settle_locked(id, now)?;
        view(&self.config().issuer, caller, &request)
    }

    /// Expires every pending request whose time ran out by `now` (the upkeep task calls it
    /// every second).
    pub fn expire_requests(&self, now: u64) -> Result<(), ApiError> {
        let due = self.approvals().due(now)?;
        if due.is_empty() {
            return Ok(());
        }
        let _one_at_a_time = self.approvals_lock();
        for id in due {
            self.settle_locked(&id, now)?;
        }
        Ok(())
    }

    fn settle(&self, id: &str, now: u64) -> Result<ApprovalRequest, ApiError> {
        let _one_at_a_time = self.approvals_lock();
        self.settle_locked(id, now)
    }

    /// Moves the pending request `id` on if it must: expired when its time ran out, decided
    /// again when its quorum is in. Returns it as it then stands.
    fn settle_locked(&self, id: &str, now: u64) -> Result<ApprovalRequest, ApiError> {
        let request = self
            .approvals()
            .get(id)?
            .ok_or_else(|| ApiError::NotFound(format!("no approval request `{id}`")))?;
        if request.state != RequestState::Pending {
            if let Some(outcome) = request.outcome.clone().filter(|o| {
                // Its own node failed between settling and logging (until the grace
                // period is over it may be logging right now).
                o.get(UNLOGGED).is_some()
                    && o[SETTLED_AT].as_u64().unwrap_or(0) + LOGGING_GRACE_SECS <= now
            }) {
                self.log_settlement(id, outcome)?;
                return self.reload(id);
            }
            return Ok(request);
        }
        if request.expires_at <= now {
            self.append(&json!({
                "type": "approval",
                "event": "expired",
                "request_id": request.id,
                "request_sha256": request.request_sha256.to_hex(),
                "at": now,
            }))?;
            if self
                .approvals()
                .settle(id, RequestState::Expired, &json!({}))?
            {
                tracing::info!(request = %id, "approval request expired");
                self.announce_settled();
            }
            return self.reload(id);
        }
        let given: Vec<&Vote> = request
            .votes
            .iter()
            .filter(|v| v.verdict == ApprovalVerdict::Approve && v.expires > now)
            .collect();
        if u32::try_from(given.len()).unwrap_or(u32::MAX) < request.approvals_required {
            return Ok(request);
        }
        self.release(&request, &given, now)?;
        self.reload(id)
    }

    fn reload(&self, id: &str) -> Result<ApprovalRequest, ApiError> {
        self.approvals()
            .get(id)?
            .ok_or_else(|| ApiError::NotFound(format!("no approval request `{id}`")))
    }

    /// At quorum: decide again, under the policy in force now and with the approvers as
    /// registered now; log the decision; settle.
    fn release(
        &self,
        request: &ApprovalRequest,
        given: &[&Vote],
        now: u64,
    ) -> Result<(), ApiError> {
        let asked = asked_of(request)?;
        let requester = self.principals().get(&request.principal)?;
        let mut approvers = Vec::new();
        for vote in given {
            if let Some(p) = self.principals().get(&vote.approver)? {
                if !p.disabled {
                    approvers.push(Approver {
                        id: p.name,
                        groups: p.groups,
                    });
                }
            }
        }
        let release = Release {
            request_id: request.id.clone(),
            request_sha256: request.request_sha256,
            approvers,
            approvals: given
                .iter()
                .map(|v| Approval {
                    approver: v.approver.clone(),
                    at: v.at,
                    sig: v.sig.clone(),
                })
                .collect(),
        };
        let decided = match requester {
            Some(requester) if !requester.disabled => {
                self.decide(&requester, &asked.authorize, now, Some(&release))?
            }
            // The requester is gone: nothing is issued to nobody.
            _ => {
                let outcome = json!({"reasons": [{"code": "invalid_request",
                    "detail": format!("the requester `{}` is disabled or unknown", request.principal)}]});
                self.append(&json!({
                    "type": "decision",
                    "decision": "deny",
                    "principal": request.principal,
                    "request_id": request.id,
                    "request_sha256": request.request_sha256.to_hex(),
                    "reasons": outcome["reasons"],
                    "at": now,
                }))?;
                if self
                    .approvals()
                    .settle(&request.id, RequestState::Deny, &outcome)?
                {
                    self.announce_settled();
                }
                return Ok(());
            }
        };
        if let Some((required, group)) = &decided.still_pending {
            // The policy applied since asks for more (or other) approvers: keep waiting.
            self.approvals().require(&request.id, *required, group)?;
            return Ok(());
        }
        let state = if decided.response.writ.is_some() {
            RequestState::Permit
        } else {
            RequestState::Deny
        };
        // Settle first, then log: of nodes reaching the quorum at once, one settles, and only
        // its decision is logged and its writ handed out. Until the decision is durable the
        // outcome holds the entry instead of an index, and nobody is shown the writ.
        self.record_link(&decided)?;
        let mut outcome = serde_json::to_value(&decided.response)
            .map_err(|e| ApiError::Internal(format!("settled request: {e}")))?;
        outcome[UNLOGGED] = decided.entry;
        outcome[SETTLED_AT] = json!(now);
        if !self.approvals().settle(&request.id, state, &outcome)? {
            return Ok(());
        }
        tracing::info!(request = %request.id, %state, "approval request settled at quorum");
        self.log_settlement(&request.id, outcome)
    }

    /// Logs a settlement's decision and records its index: from then on its writ is shown to
    /// the requester. Run again (a crash, a database outage) it may log the same decision
    /// twice, never a second writ.
    fn log_settlement(&self, id: &str, mut outcome: Value) -> Result<(), ApiError> {
        let Some(entry) = outcome.as_object_mut().and_then(|o| o.remove(UNLOGGED)) else {
            return Ok(());
        };
        let index = self.append(&entry)?;
        if let Some(o) = outcome.as_object_mut() {
            o.remove(SETTLED_AT);
        }
        outcome["log_index"] = json!(index);
        self.approvals().record_outcome(id, &outcome)?;
        self.announce_settled();
        Ok(())
    }
}

/// In a settlement's outcome: the decision entry not yet durable in the log.
const UNLOGGED: &str = "unlogged_entry";
/// In a settlement's outcome, while unlogged: when it was settled.
const SETTLED_AT: &str = "settled_at";
/// How long a settlement's own node has to log its decision before any node may: one decision
/// (one writ) is logged twice only after a failure, never in a race.
const LOGGING_GRACE_SECS: u64 = 10;

/// The view of `request` for `caller`.
fn view(
    authority: &str,
    caller: &Principal,
    request: &ApprovalRequest,
) -> Result<RequestView, ApiError> {
    let asked = asked_of(request)?;
    let unlogged = request
        .outcome
        .as_ref()
        .is_some_and(|o| o.get(UNLOGGED).is_some());
    let outcome: Option<AuthorizeResponse> = match (&request.state, &request.outcome) {
        (RequestState::Permit | RequestState::Deny, Some(o)) if !unlogged => {
            serde_json::from_value(o.clone()).ok()
        }
        _ => None,
    };
    // Settled but its decision not yet durable: shown as still pending.
    let state = if unlogged {
        RequestState::Pending
    } else {
        request.state
    };
    let is_requester = caller.name == request.principal;
    let rejected_by = request
        .votes
        .iter()
        .find(|v| v.verdict == ApprovalVerdict::Reject)
        .map(|v| v.approver.clone());
    let a = asked.authorize;
    Ok(RequestView {
        request_id: request.id.clone(),
        authority: authority.to_owned(),
        state: state.to_string(),
        principal: request.principal.clone(),
        action: a.action,
        resource: a.resource,
        args: a.args,
        args_sha256: asked.args_sha256,
        audience: a.audience,
        cnf: asked.cnf,
        env: asked.env,
        uses: asked.uses,
        lifetime_secs: asked.lifetime_secs,
        purpose: a.purpose,
        ticket: a.ticket,
        request_sha256: request.request_sha256.to_hex(),
        approvals_required: request.approvals_required,
        approver_group: request.approver_group.clone(),
        approvals: request
            .votes
            .iter()
            .filter(|v| v.verdict == ApprovalVerdict::Approve)
            .map(|v| ApprovalView {
                approver: v.approver.clone(),
                at: v.at,
            })
            .collect(),
        rejected_by,
        created_at: request.created_at,
        expires_at: request.expires_at,
        policy_digest: asked.policy_digest,
        policy_ids: asked.policy_ids,
        writ: outcome
            .as_ref()
            .filter(|_| is_requester)
            .and_then(|o| o.writ.clone()),
        jti: outcome.as_ref().and_then(|o| o.jti.clone()),
        writ_expires_at: outcome
            .as_ref()
            .filter(|o| o.writ.is_some())
            .and_then(|o| o.expires_at),
        log_index: outcome.as_ref().map(|o| o.log_index),
        reasons: outcome
            .map(|o| {
                o.reasons
                    .iter()
                    .filter_map(|r| serde_json::to_value(r).ok())
                    .collect()
            })
            .unwrap_or_default(),
    })
}
