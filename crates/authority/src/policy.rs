//! Applying a policy set at run time: validate, store, log the `policy` entry with its digest
//! and full text, then swap it in; and showing what is in force.

use serde::{Deserialize, Serialize};
use writ_policy::PolicySet;
use writ_store::Principal;

use crate::authority::{policy_entry, texts_of, Authority};
use crate::error::ApiError;
use crate::keys::require_admin;

/// A policy set as texts, as `writ policy apply` sends it.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    /// The Cedar schema.
    pub schema: String,
    /// The Cedar policies.
    pub policies: String,
    /// The entities JSON array, as text; empty means none.
    #[serde(default)]
    pub entities: String,
}

/// The answer to an apply.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ApplyResponse {
    /// The digest now in force (the `pol.digest` of new writs).
    pub digest: String,
    /// Index of the `policy` entry.
    pub log_index: u64,
    /// The ids of its policies.
    pub policy_ids: Vec<String>,
}

/// The policy set in force and the retired digests.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct PolicyResponse {
    /// Its digest.
    pub digest: String,
    /// The ids of its policies.
    pub policy_ids: Vec<String>,
    /// Digests whose writs fail with `policy_mismatch`.
    pub retired: Vec<String>,
    /// The Cedar schema.
    pub schema: String,
    /// The Cedar policies.
    pub policies: String,
    /// The entities JSON array, as text.
    pub entities: String,
}

impl Authority {
    /// Validates `request`, stores it, logs it and puts it in force, as one step among
    /// administrative changes. A policy set that does not validate changes nothing. Admins
    /// only. Blocking.
    pub fn apply_policy(
        &self,
        caller: &Principal,
        request: &PolicyRequest,
        now: u64,
    ) -> Result<ApplyResponse, ApiError> {
        require_admin(caller)?;
        let set = PolicySet::from_texts(&request.schema, &request.policies, &request.entities)
            .map_err(|e| ApiError::BadRequest(describe(&e)))?;
        let _admin = self.admin_lock();
        self.policy_store()
            .apply(&set.digest(), &texts_of(&set), now)?;
        let digest = set.digest().to_hex();
        let policy_ids = set.policy_ids().iter().map(|s| s.to_string()).collect();
        // Logged before it is in force, so no decision under it precedes its entry; a
        // restart logs the set in force again, so a failure here leaves no gap either.
        let log_index = self.append(&policy_entry(&set, Some(&caller.name), Some(now)))?;
        self.set_policy(set);
        tracing::info!(%digest, "policy set applied");
        Ok(ApplyResponse {
            digest,
            log_index,
            policy_ids,
        })
    }

    /// The policy set in force. Admins only.
    pub fn show_policy(&self, caller: &Principal) -> Result<PolicyResponse, ApiError> {
        require_admin(caller)?;
        let set = self.policy();
        Ok(PolicyResponse {
            digest: set.digest().to_hex(),
            policy_ids: set.policy_ids().iter().map(|s| s.to_string()).collect(),
            retired: self.retired_policies().iter().map(|d| d.to_hex()).collect(),
            schema: set.schema_text().to_owned(),
            policies: set.policies_text().to_owned(),
            entities: set.entities_json().to_string(),
        })
    }

    /// Retires `digest`: writs issued under it fail with `policy_mismatch` from now on.
    pub(crate) fn retire_policy(
        &self,
        digest: &writ_core::Sha256Digest,
        now: u64,
    ) -> Result<(), ApiError> {
        let _admin = self.admin_lock();
        if self.policy().digest() == *digest {
            return Err(ApiError::BadRequest(format!(
                "policy set `{digest}` is in force: apply another one before retiring it"
            )));
        }
        self.policy_store().retire(digest, now)?;
        self.set_retired(self.policy_store().retired()?);
        Ok(())
    }
}

/// A policy error as one message, each validation issue on its own line.
fn describe(e: &writ_policy::Error) -> String {
    match e {
        writ_policy::Error::Invalid(report) => {
            let mut message = "the policy set does not validate:".to_owned();
            for issue in &report.errors {
                message.push_str(&format!("\n  {issue}"));
            }
            message
        }
        other => format!("policy set: {other}"),
    }
}
