//! Execution receipts: a gate reports, signed with its executor key, what running a writ's
//! action did. The authority checks that the writ is its own, that the reporting executor is
//! the writ's audience and, when the writ binds a key (`cnf`), that this key signed; then it
//! logs the receipt as signed.

use serde::{Deserialize, Serialize};
use serde_json::json;
use writ_core::{parse_unverified, verify_receipt, Sha256Digest};
use writ_store::{Principal, Role};

use crate::authority::Authority;
use crate::error::ApiError;

/// What a gate sends after running an action.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    /// The compact writ the action ran under.
    pub writ: String,
    /// The receipt (`writ-receipt+jwt`), signed by the executor key.
    pub receipt: String,
}

/// The receipt's entry in the log.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ReceiptResponse {
    /// Index of the `receipt` entry.
    pub log_index: u64,
}

impl Authority {
    /// Logs an execution receipt for the executor `caller`. Blocking.
    pub fn record_receipt(
        &self,
        caller: &Principal,
        request: &ReceiptRequest,
        now: u64,
    ) -> Result<ReceiptResponse, ApiError> {
        if caller.role != Role::Executor {
            return Err(ApiError::Forbidden(caller.role.as_str()));
        }
        let bad = |why: String| ApiError::BadRequest(why);
        let writ = parse_unverified(&request.writ).map_err(|d| bad(format!("writ: {d}")))?;
        // The writ may have expired while the action ran; only its origin matters here.
        let claims = writ.claims();
        let ring = self.ring();
        let issued_here = claims.iss == self.config().issuer
            && ring
                .published()
                .get(writ.kid())
                .is_some_and(|key| key.verify(writ.signing_input(), writ.signature()));
        if !issued_here {
            return Err(bad("the writ was not issued by this authority".into()));
        }
        if claims.aud != caller.name {
            return Err(bad(format!(
                "the writ is for executor `{}`, not `{}`",
                claims.aud, caller.name
            )));
        }
        let (receipt, signer) = verify_receipt(&request.receipt).map_err(|e| bad(e.to_string()))?;
        let writ_sha256 = Sha256Digest::of(request.writ.as_bytes());
        if receipt.jti != claims.jti.to_string() || receipt.writ_sha256 != writ_sha256 {
            return Err(bad("the receipt is for another writ".into()));
        }
        if let Some(cnf) = &claims.cnf {
            if cnf.jkt != signer {
                return Err(bad(
                    "the receipt is not signed by the key the writ binds (cnf)".into(),
                ));
            }
        }
        let entry = json!({
            "type": "receipt",
            "jti": receipt.jti,
            "writ_sha256": writ_sha256.to_hex(),
            "executor": caller.name,
            "executor_jkt": signer.to_string(),
            "action": claims.scope.action,
            "resource": claims.scope.resource,
            "exit_status": receipt.exit_status,
            "signal": receipt.signal,
            "duration_ms": receipt.duration_ms,
            "stdout_sha256": receipt.stdout_sha256.to_hex(),
            "stderr_sha256": receipt.stderr_sha256.to_hex(),
            "receipt": request.receipt,
            "at": now,
        });
        Ok(ReceiptResponse {
            log_index: self.append(&entry)?,
        })
    }
}
