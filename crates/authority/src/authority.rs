//! The issuance pipeline: authenticate → validate → decide → sign → log durably → answer.

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use writ_core::{
    canonical, sign, Claims, Confirmation, Governance, Jti, Jwk, KeySet, Measurement, PolicyRef,
    Scope, Sha256Digest, SigningKey, VerifyingKey,
};
use writ_log::canonical_entry;
use writ_policy::{Decision, Limits, PolicySet, Reason};
use writ_store::{Principal, Role, SqliteLog, SqlitePrincipals, SqliteReplayStore};

use crate::config::AuthorityConfig;
use crate::consume::Consumer;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// What an agent asks for. Unknown fields are refused: in particular no body names the
/// principal, which is always the authenticated caller.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    /// The action (e.g. `exec`, `tools/call`).
    pub action: String,
    /// The resource (e.g. an executable's canonical path).
    pub resource: String,
    /// The exact arguments.
    pub args: Value,
    /// The registered executor that will run it (`aud`).
    pub audience: String,
    /// Extra context for policy.
    #[serde(default)]
    pub context: Option<Value>,
    /// The runtime environment measurement to bind (`env`).
    #[serde(default)]
    pub environment: Option<Measurement>,
    /// The executor's public key to bind (`cnf`).
    #[serde(default)]
    pub executor_key: Option<Jwk>,
    /// Why.
    #[serde(default)]
    pub purpose: Option<String>,
    /// A ticket reference.
    #[serde(default)]
    pub ticket: Option<String>,
}

/// The decision returned to the caller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A writ was issued.
    Permit,
    /// Refused; `reasons` say why.
    Deny,
}

/// The answer to an authorize request; `log_index` is the decision's entry in the log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuthorizeResponse {
    /// Permit or deny.
    pub decision: Outcome,
    /// The compact writ, on permit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writ: Option<String>,
    /// The writ's id, on permit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// When the writ expires, on permit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Index of the decision entry in the transparency log.
    pub log_index: u64,
    /// Why, on deny: the forbid policies that matched, no permit, or the request error.
    pub reasons: Vec<Reason>,
}

/// The durable stores an authority runs on.
pub struct Stores {
    /// Who may call.
    pub principals: SqlitePrincipals,
    /// The transparency log, opened for writing.
    pub log: SqliteLog,
    /// Consumed writ ids and revocations.
    pub replay: SqliteReplayStore,
}

/// The authority's state.
pub struct Authority {
    config: AuthorityConfig,
    signing_key: SigningKey,
    keys: KeySet,
    principals: SqlitePrincipals,
    log: SqliteLog,
    consumer: Consumer,
    policy: RwLock<Arc<PolicySet>>,
    metrics: Metrics,
}

/// A request checked and ready for policy, or the reason it is refused.
struct Checked {
    args_sha256: Sha256Digest,
    cnf: Option<Confirmation>,
    env: Option<Sha256Digest>,
}

impl Authority {
    /// An authority over its stores. `signing_key` signs writs; the log has its own key.
    /// The policy set in force is logged first (a `policy` entry with its digest and full
    /// text), so every decision after it can be replayed.
    pub fn new(
        config: AuthorityConfig,
        signing_key: SigningKey,
        stores: Stores,
        policy: PolicySet,
    ) -> Result<Self, ApiError> {
        let mut keys = KeySet::new();
        // A fresh set cannot already hold the key.
        let _ = keys.insert(signing_key.verifying_key());
        let Stores {
            principals,
            log,
            replay,
        } = stores;
        let authority = Self {
            config,
            signing_key,
            keys,
            principals,
            log,
            consumer: Consumer::new(replay),
            policy: RwLock::new(Arc::new(policy)),
            metrics: Metrics::new(),
        };
        authority.log_policy()?;
        Ok(authority)
    }

    fn log_policy(&self) -> Result<u64, ApiError> {
        let policy = self.policy()?;
        let entry = json!({
            "type": "policy",
            "digest": policy.digest().to_hex(),
            "source": policy.source(),
            "policy_ids": policy.policy_ids(),
        });
        self.append(&entry)
    }

    /// The configuration.
    pub fn config(&self) -> &AuthorityConfig {
        &self.config
    }

    /// The JWKS gates pin.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// The transparency log.
    pub fn log(&self) -> &SqliteLog {
        &self.log
    }

    /// The principals.
    pub fn principals(&self) -> &SqlitePrincipals {
        &self.principals
    }

    /// Consumed ids and revocations.
    pub fn replay(&self) -> &SqliteReplayStore {
        self.consumer.store()
    }

    pub(crate) fn consumer(&self) -> &Consumer {
        &self.consumer
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing_key
    }

    /// The policy set in force.
    pub fn policy(&self) -> Result<Arc<PolicySet>, ApiError> {
        self.policy
            .read()
            .map(|p| p.clone())
            .map_err(|_| ApiError::Internal("policy lock poisoned".into()))
    }

    /// The enabled principal a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Result<Option<Principal>, ApiError> {
        Ok(self
            .principals
            .authenticate(&Sha256Digest::of(token.as_bytes()))?)
    }

    /// Decides `request` for `caller` at `now`, logs the decision durably, and only then
    /// returns it (with the writ on permit). Blocking: call it off the async executor.
    pub fn authorize(
        &self,
        caller: &Principal,
        request: &AuthorizeRequest,
        now: u64,
    ) -> Result<AuthorizeResponse, ApiError> {
        if !matches!(caller.role, Role::Agent | Role::Admin) {
            return Err(ApiError::Forbidden(caller.role.as_str()));
        }
        let policy = self.policy()?;
        let checked = match self.check(request) {
            Ok(checked) => checked,
            Err(detail) => {
                let reasons = vec![Reason::InvalidRequest { detail }];
                return self.deny(caller, request, &policy, None, reasons, now);
            }
        };
        match policy.evaluate(&policy_request(caller, request), &self.limits()) {
            Decision::Permit {
                policy_ids,
                lifetime_secs,
                uses,
                delegation,
            } => {
                let grant = Grant {
                    policy_ids,
                    lifetime_secs,
                    uses,
                    delegation,
                };
                self.permit(caller, request, &policy, checked, grant, now)
            }
            Decision::Deny { reasons } => {
                self.deny(caller, request, &policy, Some(&checked), reasons, now)
            }
            // Approvals are not served yet: a request that needs them is refused (fail closed).
            Decision::Pending {
                approvals_required,
                approver_group,
                ..
            } => {
                let detail = format!(
                    "needs {approvals_required} approval(s) from group `{approver_group}`, and this \
                     authority does not take approvals yet"
                );
                let reasons = vec![Reason::InvalidRequest { detail }];
                self.deny(caller, request, &policy, Some(&checked), reasons, now)
            }
        }
    }

    /// Request rules that hold whatever the policy says.
    fn check(&self, request: &AuthorizeRequest) -> Result<Checked, String> {
        let args_sha256 =
            canonical::args_digest(&request.args).map_err(|e| format!("arguments: {e}"))?;
        match self.principals.get(&request.audience) {
            Ok(Some(p)) if p.role == Role::Executor && !p.disabled => {}
            Ok(_) => {
                return Err(format!(
                    "audience `{}` is not a registered executor",
                    request.audience
                ))
            }
            Err(e) => return Err(format!("audience could not be checked: {e}")),
        }
        let cnf = match &request.executor_key {
            None => None,
            Some(jwk) => {
                let key = VerifyingKey::from_jwk(jwk).map_err(|e| format!("executor_key: {e}"))?;
                Some(Confirmation {
                    jkt: key.kid().clone(),
                })
            }
        };
        if let Some(context) = &request.context {
            canonical::check_exact(context).map_err(|e| format!("context: {e}"))?;
        }
        Ok(Checked {
            args_sha256,
            cnf,
            env: request.environment.as_ref().map(Measurement::digest),
        })
    }

    fn limits(&self) -> Limits {
        Limits {
            default_lifetime_secs: self.config.default_lifetime_secs,
            max_lifetime_secs: self.config.max_lifetime_secs,
            max_uses: self.config.max_uses,
        }
    }

    fn permit(
        &self,
        caller: &Principal,
        request: &AuthorizeRequest,
        policy: &PolicySet,
        checked: Checked,
        grant: Grant,
        now: u64,
    ) -> Result<AuthorizeResponse, ApiError> {
        let Grant {
            policy_ids,
            lifetime_secs,
            uses,
            delegation,
        } = grant;
        let jti = Jti::from_bytes(random_bytes()?);
        let exp = now + lifetime_secs;
        let gov = (request.purpose.is_some() || request.ticket.is_some()).then(|| Governance {
            purpose: request.purpose.clone(),
            ticket: request.ticket.clone(),
            approvals: Vec::new(),
        });
        let claims = Claims {
            iss: self.config.issuer.clone(),
            sub: caller.name.clone(),
            aud: request.audience.clone(),
            iat: now,
            nbf: now,
            exp,
            jti,
            scope: Scope {
                action: request.action.clone(),
                resource: request.resource.clone(),
                args_sha256: checked.args_sha256,
            },
            pol: PolicyRef {
                digest: policy.digest(),
                ids: policy_ids.clone(),
            },
            uses,
            cnf: checked.cnf.clone(),
            env: checked.env,
            lin: None,
            del: delegation,
            gov,
        };
        let writ =
            sign(&claims, &self.signing_key).map_err(|e| ApiError::Internal(e.to_string()))?;
        let entry = json!({
            "type": "decision",
            "decision": "permit",
            "principal": caller.name,
            "request_sha256": request_digest(caller, request, &checked).to_hex(),
            "action": request.action,
            "resource": request.resource,
            "args_sha256": checked.args_sha256.to_hex(),
            "audience": request.audience,
            "policy_digest": policy.digest().to_hex(),
            "policy_ids": policy_ids,
            "reasons": [],
            "jti": jti.to_string(),
            "writ_sha256": Sha256Digest::of(writ.as_bytes()).to_hex(),
            "uses": uses,
            "exp": exp,
            "at": now,
        });
        // No unaudited authorization: the writ leaves only after its decision is durable.
        let log_index = self.append(&entry)?;
        Ok(AuthorizeResponse {
            decision: Outcome::Permit,
            writ: Some(writ),
            jti: Some(jti.to_string()),
            expires_at: Some(exp),
            log_index,
            reasons: Vec::new(),
        })
    }

    fn deny(
        &self,
        caller: &Principal,
        request: &AuthorizeRequest,
        policy: &PolicySet,
        checked: Option<&Checked>,
        reasons: Vec<Reason>,
        now: u64,
    ) -> Result<AuthorizeResponse, ApiError> {
        let entry = json!({
            "type": "decision",
            "decision": "deny",
            "principal": caller.name,
            "request_sha256": checked.map(|c| request_digest(caller, request, c).to_hex()),
            "action": request.action,
            "resource": request.resource,
            "args_sha256": checked.map(|c| c.args_sha256.to_hex()),
            "audience": request.audience,
            "policy_digest": policy.digest().to_hex(),
            "reasons": reasons,
            "at": now,
        });
        let log_index = self.append(&entry)?;
        Ok(AuthorizeResponse {
            decision: Outcome::Deny,
            writ: None,
            jti: None,
            expires_at: None,
            log_index,
            reasons,
        })
    }

    pub(crate) fn append(&self, entry: &Value) -> Result<u64, ApiError> {
        let bytes =
            canonical_entry(entry).map_err(|e| ApiError::Internal(format!("log entry: {e}")))?;
        Ok(self.log.append(bytes)?)
    }
}

/// SHA-256 over what a decision was about: who asked, for what, bound to what.
fn request_digest(
    caller: &Principal,
    request: &AuthorizeRequest,
    checked: &Checked,
) -> Sha256Digest {
    canonical::digest(&json!({
        "principal": caller.name,
        "action": request.action,
        "resource": request.resource,
        "args_sha256": checked.args_sha256.to_hex(),
        "audience": request.audience,
        "cnf": checked.cnf.as_ref().map(|c| c.jkt.to_string()),
        "env": checked.env.map(|d| d.to_hex()),
    }))
}

fn random_bytes<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| ApiError::Internal(format!("randomness: {e}")))?;
    Ok(bytes)
}

/// What a permit grants.
struct Grant {
    policy_ids: Vec<String>,
    lifetime_secs: u64,
    uses: u32,
    delegation: Option<writ_core::Delegation>,
}

/// The policy request: the caller as the registry knows it, and a context the client cannot
/// use to claim lineage (writ sets that itself when it issues a child).
fn policy_request(caller: &Principal, request: &AuthorizeRequest) -> writ_policy::Request {
    let mut context = match &request.context {
        Some(Value::Object(map)) => map.clone(),
        _ => serde_json::Map::new(),
    };
    context.remove("lineage");
    if let Some(purpose) = &request.purpose {
        context.insert("purpose".into(), Value::String(purpose.clone()));
    }
    if let Some(ticket) = &request.ticket {
        context.insert("ticket".into(), Value::String(ticket.clone()));
    }
    if let Some(env) = &request.environment {
        context.insert("env".into(), env.to_value());
    }
    writ_policy::Request {
        principal: writ_policy::Principal {
            id: caller.name.clone(),
            role: caller.role.as_str().to_owned(),
            groups: caller.groups.clone(),
        },
        action: request.action.clone(),
        resource: request.resource.clone(),
        args: request.args.clone(),
        context: Value::Object(context),
    }
}
