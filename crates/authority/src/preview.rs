//! What policy would decide, without deciding: `POST /v1/authorize/preview` answers permit or
//! deny for a request and issues, signs and logs nothing. Gates use it to show an agent only
//! the tools it could be permitted (`writ mcp-gateway --hide-denied-tools`); it grants
//! nothing, and every real call is still authorized on its own.

use serde::{Deserialize, Serialize};
use writ_policy::{Decision, Reason};
use writ_store::{Principal, Role};

use crate::authority::{policy_request, Authority, AuthorizeRequest};
use crate::error::ApiError;

/// What policy would say.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct PreviewResponse {
    /// `permit`, `pending` (approvals needed) or `deny`.
    pub decision: String,
    /// Why, unless permit.
    #[schema(value_type = Vec<Object>)]
    pub reasons: Vec<Reason>,
}

impl Authority {
    /// What policy would decide for `caller`'s `request` now. Nothing is issued or logged.
    pub fn preview(
        &self,
        caller: &Principal,
        request: &AuthorizeRequest,
    ) -> Result<PreviewResponse, ApiError> {
        if !matches!(caller.role, Role::Agent | Role::Admin) {
            return Err(ApiError::Forbidden(caller.role.as_str()));
        }
        if let Err(detail) = self.check_request(request) {
            return Ok(PreviewResponse {
                decision: "deny".into(),
                reasons: vec![Reason::InvalidRequest { detail }],
            });
        }
        let policy = self.policy();
        let (decision, reasons) =
            match policy.evaluate(&policy_request(caller, request, None), &self.limits()) {
                Decision::Permit { .. } => ("permit", Vec::new()),
                Decision::Pending { .. } => ("pending", Vec::new()),
                Decision::Deny { reasons } => ("deny", reasons),
            };
        Ok(PreviewResponse {
            decision: decision.into(),
            reasons,
        })
    }
}
