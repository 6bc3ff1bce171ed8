//! The issuance pipeline: authenticate → validate → decide → sign → log durably → answer.

use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use writ_core::{
    canonical, sign, Approval, Claims, Confirmation, Governance, Jti, Jwk, KeySet, Measurement,
    PolicyRef, RequestTerms, Scope, Sha256Digest, SigningKey, VerifyingKey,
};
use writ_log::canonical_entry;
use writ_policy::{Approver, Decision, Limits, PolicySet, Reason};
use writ_store::postgres::{
    PgApprovals, PgLog, PgPolicies, PgPrincipals, PgRevocations, PgSigningKeys,
};
use writ_store::{
    ApprovalRequest, ApprovalStore, KeyStore, LogStore, PgDatabase, PolicyStore, PolicyTexts,
    Principal, PrincipalStore, RequestState, RevocationStore, Role, SqliteApprovals, SqliteLog,
    SqlitePolicies, SqlitePrincipals, SqliteReplayStore, SqliteSigningKeys, StoreError,
};

use crate::config::AuthorityConfig;
use crate::consume::Consumer;
use crate::delegation::Parent;
use crate::error::ApiError;
use crate::keyring::KeyRing;
use crate::metrics::Metrics;

/// What an agent asks for. Unknown fields are refused: in particular no body names the
/// principal, which is always the authenticated caller.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    /// The action (e.g. `exec`, `tools/call`).
    pub action: String,
    /// The resource (e.g. an executable's canonical path).
    pub resource: String,
    /// The exact arguments.
    #[schema(value_type = Object)]
    pub args: Value,
    /// The registered executor that will run it (`aud`).
    pub audience: String,
    /// Extra context for policy.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    /// The runtime environment measurement to bind (`env`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub environment: Option<Measurement>,
    /// The executor's public key to bind (`cnf`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub executor_key: Option<Jwk>,
    /// Why.
    #[serde(default)]
    pub purpose: Option<String>,
    /// A ticket reference.
    #[serde(default)]
    pub ticket: Option<String>,
    /// The parent writ (compact), for a delegated request: the child is checked against its
    /// `del` and lifetime, and carries `lin`.
    #[serde(default)]
    pub parent: Option<String>,
}

/// The decision returned to the caller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A writ was issued.
    Permit,
    /// Refused; `reasons` say why.
    Deny,
    /// Waiting for human approval: `request_id` names the request to wait on.
    Pending,
}

/// The answer to an authorize request; `log_index` is the decision's entry in the log.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
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
    #[schema(value_type = Vec<Object>)]
    pub reasons: Vec<Reason>,
    /// On pending: the request to wait on (`GET /v1/requests/{id}`); `expires_at` is when
    /// it expires unless settled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// On pending: the digest approvers sign (see docs/approvals.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_sha256: Option<String>,
    /// On pending: how many distinct approvers must approve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals_required: Option<u32>,
    /// On pending: the group they must belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver_group: Option<String>,
}

/// The durable stores an authority runs on.
pub struct Stores {
    /// Who may call.
    pub principals: Box<dyn PrincipalStore>,
    /// The transparency log, opened for writing.
    pub log: Box<dyn LogStore>,
    /// Consumed writ ids and revocations.
    pub replay: Box<dyn RevocationStore>,
    /// The writ-signing keys, current and past.
    pub keys: Box<dyn KeyStore>,
    /// The policy sets applied, the one in force, and retired digests.
    pub policies: Box<dyn PolicyStore>,
    /// Requests waiting for approval, and the votes given.
    pub approvals: Box<dyn ApprovalStore>,
    /// Whether other authority nodes share these stores: then what this node caches
    /// (policy in force, retired digests, keys) is re-read every second, and revocable state
    /// is re-read before every consumption.
    pub shared: bool,
}

impl Stores {
    /// Every store in the one SQLite database `db` (WAL), the log opened for writing: the
    /// embedded default. Consumptions are marked in the log writer's transaction, so the log
    /// and the revocation state must be this one file.
    pub fn sqlite(db: &std::path::Path, log: SqliteLog) -> Result<Self, StoreError> {
        let same = |a: &std::path::Path, b: &std::path::Path| {
            a == b
                || matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)),
                            (Ok(x), Ok(y)) if x == y)
        };
        if !same(db, log.path()) {
            return Err(StoreError::Corrupt(format!(
                "the log `{}` must be in the database `{}`",
                log.path().display(),
                db.display()
            )));
        }
        Ok(Self {
            principals: Box::new(SqlitePrincipals::open(db)?),
            log: Box::new(log),
            replay: Box::new(SqliteReplayStore::open(db)?),
            keys: Box::new(SqliteSigningKeys::open(db)?),
            policies: Box::new(SqlitePolicies::open(db)?),
            approvals: Box::new(SqliteApprovals::open(db)?),
            shared: false,
        })
    }

    /// Every store in the PostgreSQL database `db`, the log `log` in it: any number of nodes
    /// built this way on one database act as one authority.
    pub fn postgres(db: std::sync::Arc<PgDatabase>, log: PgLog) -> Self {
        Self {
            principals: Box::new(PgPrincipals::new(db.clone())),
            log: Box::new(log),
            replay: Box::new(PgRevocations::new(db.clone())),
            keys: Box::new(PgSigningKeys::new(db.clone())),
            policies: Box::new(PgPolicies::new(db.clone())),
            approvals: Box::new(PgApprovals::new(db)),
            shared: true,
        }
    }
}

/// The authority's state.
pub struct Authority {
    config: AuthorityConfig,
    ring: RwLock<Arc<KeyRing>>,
    key_store: Box<dyn KeyStore>,
    principals: Box<dyn PrincipalStore>,
    log: Box<dyn LogStore>,
    consumer: Consumer,
    policy: RwLock<Arc<PolicySet>>,
    policy_store: Box<dyn PolicyStore>,
    retired: RwLock<Arc<Vec<Sha256Digest>>>,
    /// Serializes administrative changes (policy, keys) so each is stored, logged and put in
    /// force as one step.
    admin: Mutex<()>,
    metrics: Metrics,
    approvals: Box<dyn ApprovalStore>,
    shared: bool,
    /// Serializes votes and settlements, so a quorum releases one writ.
    approvals_lock: Mutex<()>,
    /// Bumped whenever a request is settled: long polls wake on it.
    settled: tokio::sync::watch::Sender<u64>,
}

/// A request checked and ready for policy, or the reason it is refused.
struct Checked {
    args_sha256: Sha256Digest,
    cnf: Option<Confirmation>,
    env: Option<Sha256Digest>,
    /// The parent presented, once it held up.
    parent: Option<Parent>,
    /// The parent's id, when one was presented and could be read.
    parent_jti: Option<String>,
}

impl Authority {
    /// An authority over its stores.
    ///
    /// `first_key` signs when the key store is empty (a new data dir); after that the stored
    /// keys rule. `initial_policy` is put in force when no policy set was ever applied; after
    /// that the one last applied (`PUT /v1/policy`) rules. Either way the policy set in force
    /// is logged first (a `policy` entry with its digest and full text), so every decision
    /// after it can be replayed.
    pub fn new(
        config: AuthorityConfig,
        first_key: SigningKey,
        stores: Stores,
        initial_policy: PolicySet,
    ) -> Result<Self, ApiError> {
        let Stores {
            principals,
            log,
            replay,
            keys: key_store,
            policies: policy_store,
            approvals,
            shared,
        } = stores;
        let mut fresh_key = None;
        if key_store.list()?.is_empty() {
            key_store.add(&first_key, 0, 0)?;
            fresh_key = Some(first_key.kid().clone());
        }
        let policy = match policy_store.in_force()? {
            Some((digest, texts)) => load_policy(&digest, &texts)?,
            None => {
                policy_store.apply(&initial_policy.digest(), &texts_of(&initial_policy), 0)?;
                initial_policy
            }
        };
        let authority = Self {
            config,
            ring: RwLock::new(Arc::new(KeyRing::new(key_store.list()?))),
            key_store,
            principals,
            log,
            consumer: Consumer::new(replay),
            policy: RwLock::new(Arc::new(policy)),
            retired: RwLock::new(Arc::new(policy_store.retired()?)),
            policy_store,
            admin: Mutex::new(()),
            metrics: Metrics::new(),
            approvals,
            shared,
            approvals_lock: Mutex::new(()),
            settled: tokio::sync::watch::Sender::new(0),
        };
        if let Some(kid) = fresh_key {
            authority.append(&json!({
                "type": "key",
                "event": "added",
                "kid": kid.to_string(),
                "activates_at": 0,
            }))?;
        }
        authority.log_policy()?;
        Ok(authority)
    }

    /// Whether other nodes share this authority's stores.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Re-reads what other nodes may have changed: the policy set in force, retired digests
    /// and the signing keys. Each is swapped whole.
    pub(crate) fn refresh_shared(&self) -> Result<(), ApiError> {
        self.refresh_revocable()?;
        if let Some((digest, texts)) = self.policy_store.in_force()? {
            if digest != self.policy().digest() {
                let set = load_policy(&digest, &texts)?;
                tracing::info!(%digest, "policy set applied at another node is now in force");
                self.set_policy(set);
            }
        }
        Ok(())
    }

    /// Re-reads retired policy digests and the signing keys (revoked keys leave the ring):
    /// what a consumption must never take from a stale cache.
    pub(crate) fn refresh_revocable(&self) -> Result<(), ApiError> {
        self.set_retired(self.policy_store.retired()?);
        self.set_ring(KeyRing::new(self.key_store.list()?));
        Ok(())
    }

    /// Appends the `policy` entry of the set in force.
    fn log_policy(&self) -> Result<u64, ApiError> {
        self.append(&policy_entry(&self.policy(), None, None))
    }

    /// The configuration.
    pub fn config(&self) -> &AuthorityConfig {
        &self.config
    }

    /// The JWKS gates pin: announced, active and retiring keys.
    pub fn keys(&self) -> KeySet {
        self.ring().published().clone()
    }

    pub(crate) fn ring(&self) -> Arc<KeyRing> {
        // Readers only ever see a whole ring (it is swapped, never edited), so a poisoned
        // lock still holds a consistent one.
        self.ring.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_ring(&self, ring: KeyRing) {
        *self.ring.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(ring);
    }

    pub(crate) fn key_store(&self) -> &dyn KeyStore {
        &*self.key_store
    }

    pub(crate) fn policy_store(&self) -> &dyn PolicyStore {
        &*self.policy_store
    }

    pub(crate) fn admin_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.admin.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Policy digests whose writs fail with `policy_mismatch`.
    pub fn retired_policies(&self) -> Arc<Vec<Sha256Digest>> {
        self.retired
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_retired(&self, retired: Vec<Sha256Digest>) {
        *self.retired.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(retired);
    }

    pub(crate) fn set_policy(&self, policy: PolicySet) {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(policy);
    }

    /// The transparency log.
    pub fn log(&self) -> &dyn LogStore {
        &*self.log
    }

    /// The principals.
    pub fn principals(&self) -> &dyn PrincipalStore {
        &*self.principals
    }

    /// Consumed ids and revocations.
    pub fn replay(&self) -> &dyn RevocationStore {
        self.consumer.store()
    }

    pub(crate) fn consumer(&self) -> &Consumer {
        &self.consumer
    }

    /// Requests pending approval.
    pub fn approvals(&self) -> &dyn ApprovalStore {
        &*self.approvals
    }

    pub(crate) fn approvals_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.approvals_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes long polls: a request was settled.
    pub(crate) fn announce_settled(&self) {
        self.settled.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn watch_settled(&self) -> tokio::sync::watch::Receiver<u64> {
        self.settled.subscribe()
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The key that signs at `now`; none active means nothing is issued.
    pub(crate) fn signer(&self, now: u64) -> Result<Arc<SigningKey>, ApiError> {
        self.ring()
            .signer(now)
            .ok_or_else(|| ApiError::Unavailable("no signing key is active".into()))
    }

    /// The policy set in force.
    pub fn policy(&self) -> Arc<PolicySet> {
        // Swapped whole, never edited: a poisoned lock still holds a consistent set.
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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
        let decided = self.decide(caller, request, now, None)?;
        self.record_link(&decided)?;
        let index = self.append(&decided.entry)?;
        self.record_pending(&decided)?;
        Ok(decided.logged_at(index))
    }

    /// As [`authorize`](Self::authorize), without holding a thread while the decision's
    /// group commit runs: the CPU work (policy, signing) runs here, the wait is asynchronous.
    pub async fn authorize_async(
        &self,
        caller: &Principal,
        request: &AuthorizeRequest,
        now: u64,
    ) -> Result<AuthorizeResponse, ApiError> {
        let decided = self.decide(caller, request, now, None)?;
        self.record_link(&decided)?;
        let index = self.append_async(&decided.entry).await?;
        self.record_pending(&decided)?;
        Ok(decided.logged_at(index))
    }

    /// A pending request is stored once its decision is durable: a request that was never
    /// logged can never be approved.
    fn record_pending(&self, decided: &Decided) -> Result<(), ApiError> {
        if let Some(pending) = &decided.pending {
            self.approvals.create(pending)?;
        }
        Ok(())
    }

    /// Records a delegated decision's link, before its writ can leave.
    pub(crate) fn record_link(&self, decided: &Decided) -> Result<(), ApiError> {
        if let Some((child, parent, holder, parent_holder)) = &decided.link {
            self.replay()
                .record_link(child, parent, holder, parent_holder)?;
        }
        Ok(())
    }

    /// The decision and its log entry; nothing leaves before the entry is durable.
    ///
    /// With `release` (a request that reached its quorum) the approvals count: a permit
    /// carries them in `gov`, and a decision still pending is [`Decided::still_pending`].
    pub(crate) fn decide(
        &self,
        caller: &Principal,
        request: &AuthorizeRequest,
        now: u64,
        release: Option<&Release>,
    ) -> Result<Decided, ApiError> {
        if !matches!(caller.role, Role::Agent | Role::Admin) {
            return Err(ApiError::Forbidden(caller.role.as_str()));
        }
        let policy = self.policy();
        let ask = Asking {
            caller,
            request,
            policy: &policy,
            now,
            release,
        };
        let mut checked = match self.check(request) {
            Ok(checked) => checked,
            Err(detail) => {
                let reasons = vec![Reason::InvalidRequest { detail }];
                return self.deny(&ask, None, reasons);
            }
        };
        if let Some(compact) = &request.parent {
            match self.check_parent(request, compact, now)? {
                Ok(parent) => checked.parent = Some(parent),
                Err((code, detail)) => {
                    let reasons = vec![Reason::Parent {
                        denial: code.as_str().to_owned(),
                        detail,
                    }];
                    return self.deny(&ask, Some(&checked), reasons);
                }
            }
        }
        let lineage = checked.parent.as_ref().map(|p| {
            json!({
                "parent": p.lin.parent.to_string(),
                "root": p.lin.root.to_string(),
                "depth": p.lin.depth,
                "chain": p.chain,
                "root_initiator": p.chain.first(),
            })
        });
        let asked = policy_request(caller, request, lineage);
        let decision = match release {
            None => policy.evaluate(&asked, &self.limits()),
            Some(r) => policy.evaluate_with_approvals(&asked, &self.limits(), &r.approvers),
        };
        match decision {
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
                if let Some(release) = release {
                    // Approvers approved these terms and no others.
                    let terms = terms_digest(request, &checked, grant.uses);
                    if terms != release.request_sha256 {
                        let detail = "the policy in force now grants other terms (uses) than \
                                      the ones approved"
                            .to_owned();
                        let reasons = vec![Reason::InvalidRequest { detail }];
                        return self.deny(&ask, Some(&checked), reasons);
                    }
                }
                self.permit(&ask, checked, grant)
            }
            Decision::Deny { reasons } => self.deny(&ask, Some(&checked), reasons),
            Decision::Pending {
                approvals_required,
                approver_group,
                ..
            } if release.is_some() => {
                Ok(Decided::still_pending(approvals_required, approver_group))
            }
            Decision::Pending {
                policy_ids,
                approvals_required,
                approver_group,
                lifetime_secs,
                uses,
            } => {
                let pending = Pended {
                    policy_ids,
                    approvals_required,
                    approver_group,
                    lifetime_secs,
                    uses,
                };
                self.pending(&ask, &checked, pending)
            }
        }
    }

    /// A request that needs approval: a `pending` decision and the request to store once it
    /// is logged.
    fn pending(
        &self,
        ask: &Asking,
        checked: &Checked,
        pended: Pended,
    ) -> Result<Decided, ApiError> {
        let Asking {
            caller,
            request,
            policy,
            now,
            ..
        } = *ask;
        let id = Jti::from_bytes(random_bytes()?).to_string();
        let terms = terms_digest(request, checked, pended.uses);
        let expires_at = now + self.config.approval_ttl_secs;
        let asked = crate::approvals::Asked {
            authorize: request.clone(),
            args_sha256: checked.args_sha256.to_hex(),
            cnf: checked.cnf.as_ref().map(|c| c.jkt.to_string()),
            env: checked.env.map(|d| d.to_hex()),
            uses: pended.uses,
            lifetime_secs: pended.lifetime_secs,
            policy_digest: policy.digest().to_hex(),
            policy_ids: pended.policy_ids.clone(),
        };
        let stored = serde_json::to_value(&asked)
            .map_err(|e| ApiError::Internal(format!("pending request: {e}")))?;
        let entry = json!({
            "type": "decision",
            "decision": "pending",
            "principal": caller.name,
            "request_id": id,
            "request_sha256": terms.to_hex(),
            "action": request.action,
            "resource": request.resource,
            "args_sha256": checked.args_sha256.to_hex(),
            "audience": request.audience,
            "uses": pended.uses,
            "policy_digest": policy.digest().to_hex(),
            "policy_ids": pended.policy_ids,
            "approvals_required": pended.approvals_required,
            "approver_group": pended.approver_group,
            "parent": checked.parent_jti,
            "expires_at": expires_at,
            "reasons": [],
            "at": now,
        });
        Ok(Decided {
            link: None,
            entry,
            pending: Some(ApprovalRequest {
                id: id.clone(),
                principal: caller.name.clone(),
                request: stored,
                request_sha256: terms,
                approvals_required: pended.approvals_required,
                approver_group: pended.approver_group.clone(),
                created_at: now,
                expires_at,
                state: RequestState::Pending,
                outcome: None,
                votes: Vec::new(),
            }),
            still_pending: None,
            response: AuthorizeResponse {
                decision: Outcome::Pending,
                writ: None,
                jti: None,
                expires_at: Some(expires_at),
                log_index: 0,
                reasons: Vec::new(),
                request_id: Some(id),
                request_sha256: Some(terms.to_hex()),
                approvals_required: Some(pended.approvals_required),
                approver_group: Some(pended.approver_group),
            },
        })
    }

    /// Whether `request` passes the rules that hold whatever the policy says.
    pub(crate) fn check_request(&self, request: &AuthorizeRequest) -> Result<(), String> {
        self.check(request).map(|_| ())
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
            parent: None,
            parent_jti: request
                .parent
                .as_deref()
                .and_then(|c| writ_core::parse_unverified(c).ok())
                .map(|w| w.claims().jti.to_string()),
        })
    }

    pub(crate) fn limits(&self) -> Limits {
        Limits {
            default_lifetime_secs: self.config.default_lifetime_secs,
            max_lifetime_secs: self.config.max_lifetime_secs,
            max_uses: self.config.max_uses,
        }
    }

    fn permit(&self, ask: &Asking, checked: Checked, grant: Grant) -> Result<Decided, ApiError> {
        let Asking {
            caller,
            request,
            policy,
            now,
            release,
        } = *ask;
        let Grant {
            policy_ids,
            lifetime_secs,
            uses,
            delegation,
        } = grant;
        let jti = Jti::from_bytes(random_bytes()?);
        // A child expires no later than its parent.
        let exp = match &checked.parent {
            Some(p) => (now + lifetime_secs).min(p.exp),
            None => now + lifetime_secs,
        };
        // What a child may delegate further never reaches deeper than its parent allowed.
        let delegation = match (&checked.parent, delegation) {
            (Some(p), Some(mut d)) => {
                d.max_depth = d.max_depth.min(p.del.max_depth);
                Some(d)
            }
            (_, d) => d,
        };
        let approvals: Vec<Approval> = release.map(|r| r.approvals.clone()).unwrap_or_default();
        let gov = (request.purpose.is_some() || request.ticket.is_some() || !approvals.is_empty())
            .then(|| Governance {
                purpose: request.purpose.clone(),
                ticket: request.ticket.clone(),
                approvals: approvals.clone(),
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
            lin: checked.parent.as_ref().map(|p| p.lin.clone()),
            del: delegation,
            gov,
        };
        let writ =
            sign(&claims, &*self.signer(now)?).map_err(|e| ApiError::Internal(e.to_string()))?;
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
            "parent": checked.parent_jti,
            "root": checked.parent.as_ref().map(|p| p.lin.root.to_string()),
            "depth": checked.parent.as_ref().map(|p| p.lin.depth),
            "writ_sha256": Sha256Digest::of(writ.as_bytes()).to_hex(),
            "uses": uses,
            "exp": exp,
            "request_id": release.map(|r| r.request_id.clone()),
            "approvals": approvals,
            "at": now,
        });
        let link = checked.parent.as_ref().map(|p| {
            let parent_holder = p.chain.last().cloned().unwrap_or_default();
            (jti, p.lin.parent, caller.name.clone(), parent_holder)
        });
        // No unaudited authorization: the writ leaves only after its decision is durable.
        Ok(Decided {
            link,
            entry,
            pending: None,
            still_pending: None,
            response: AuthorizeResponse {
                writ: Some(writ),
                jti: Some(jti.to_string()),
                expires_at: Some(exp),
                ..AuthorizeResponse::answer(Outcome::Permit, Vec::new())
            },
        })
    }

    fn deny(
        &self,
        ask: &Asking,
        checked: Option<&Checked>,
        reasons: Vec<Reason>,
    ) -> Result<Decided, ApiError> {
        let Asking {
            caller,
            request,
            policy,
            now,
            release,
        } = *ask;
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
            "parent": checked.and_then(|c| c.parent_jti.clone()),
            "request_id": release.map(|r| r.request_id.clone()),
            "at": now,
        });
        Ok(Decided {
            link: None,
            entry,
            pending: None,
            still_pending: None,
            response: AuthorizeResponse::answer(Outcome::Deny, reasons),
        })
    }

    pub(crate) fn append(&self, entry: &Value) -> Result<u64, ApiError> {
        let bytes =
            canonical_entry(entry).map_err(|e| ApiError::Internal(format!("log entry: {e}")))?;
        Ok(self.log.append(bytes)?)
    }

    /// Appends `entry` and waits, without holding a thread, until it is durable.
    pub(crate) async fn append_async(&self, entry: &Value) -> Result<u64, ApiError> {
        let bytes =
            canonical_entry(entry).map_err(|e| ApiError::Internal(format!("log entry: {e}")))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.log.append_then(
            bytes,
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        )?;
        let result = rx
            .await
            .map_err(|_| ApiError::Unavailable("the log writer stopped".into()))?;
        Ok(result?)
    }
}

/// A stored policy set, checked against its digest.
fn load_policy(digest: &Sha256Digest, texts: &PolicyTexts) -> Result<PolicySet, ApiError> {
    let set = PolicySet::from_texts(&texts.schema, &texts.policies, &texts.entities)
        .map_err(|e| ApiError::Internal(format!("the stored policy set `{digest}`: {e}")))?;
    if set.digest() != *digest {
        return Err(ApiError::Internal(format!(
            "the stored policy set `{digest}` now digests to `{}`",
            set.digest()
        )));
    }
    Ok(set)
}

/// The `policy` entry: digest and full text, so any decision under it can be replayed.
pub(crate) fn policy_entry(policy: &PolicySet, by: Option<&str>, at: Option<u64>) -> Value {
    json!({
        "type": "policy",
        "digest": policy.digest().to_hex(),
        "source": policy.source(),
        "policy_ids": policy.policy_ids(),
        "by": by,
        "at": at,
    })
}

/// The stored form of a policy set.
pub(crate) fn texts_of(policy: &PolicySet) -> PolicyTexts {
    PolicyTexts {
        schema: policy.schema_text().to_owned(),
        policies: policy.policies_text().to_owned(),
        entities: policy.entities_json().to_string(),
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

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| ApiError::Internal(format!("randomness: {e}")))?;
    Ok(bytes)
}

/// A decision whose entry is not yet in the log.
pub(crate) struct Decided {
    pub(crate) entry: Value,
    pub(crate) response: AuthorizeResponse,
    /// For a delegated permit: the child, its parent, their holders. Recorded before the
    /// writ leaves, so revoking any ancestor reaches it.
    link: Option<(Jti, Jti, String, String)>,
    /// For a new pending decision: the request to store once the entry is durable.
    pending: Option<ApprovalRequest>,
    /// At a quorum, when policy now asks for more approvals than were given: how many, from
    /// which group (nothing is logged, the request stays pending).
    pub(crate) still_pending: Option<(u32, String)>,
}

impl Decided {
    fn still_pending(required: u32, group: String) -> Self {
        Self {
            entry: Value::Null,
            response: AuthorizeResponse::answer(Outcome::Pending, Vec::new()),
            link: None,
            pending: None,
            still_pending: Some((required, group)),
        }
    }

    /// The answer, once the entry is durable at `index`.
    pub(crate) fn logged_at(mut self, index: u64) -> AuthorizeResponse {
        self.response.log_index = index;
        self.response
    }
}

impl AuthorizeResponse {
    fn answer(decision: Outcome, reasons: Vec<Reason>) -> Self {
        Self {
            decision,
            writ: None,
            jti: None,
            expires_at: None,
            log_index: 0,
            reasons,
            request_id: None,
            request_sha256: None,
            approvals_required: None,
            approver_group: None,
        }
    }
}

/// Who asks for what, under which policy, when; and at a quorum, with which approvals.
#[derive(Clone, Copy)]
struct Asking<'a> {
    caller: &'a Principal,
    request: &'a AuthorizeRequest,
    policy: &'a PolicySet,
    now: u64,
    release: Option<&'a Release>,
}

/// What a pending decision asks for.
struct Pended {
    policy_ids: Vec<String>,
    approvals_required: u32,
    approver_group: String,
    lifetime_secs: u64,
    uses: u32,
}

/// A request at its quorum, decided again with its approvals.
pub(crate) struct Release {
    pub(crate) request_id: String,
    /// The digest the approvers signed.
    pub(crate) request_sha256: Sha256Digest,
    /// The approvers, with their groups as registered now.
    pub(crate) approvers: Vec<Approver>,
    /// What the writ's `gov.approvals` carries.
    pub(crate) approvals: Vec<Approval>,
}

/// The digest approvers sign: the terms the writ will carry.
fn terms_digest(request: &AuthorizeRequest, checked: &Checked, uses: u32) -> Sha256Digest {
    RequestTerms {
        action: &request.action,
        resource: &request.resource,
        args_sha256: &checked.args_sha256,
        aud: &request.audience,
        cnf: checked.cnf.as_ref().map(|c| &c.jkt),
        env: checked.env.as_ref(),
        uses,
    }
    .digest()
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
pub(crate) fn policy_request(
    caller: &Principal,
    request: &AuthorizeRequest,
    lineage: Option<Value>,
) -> writ_policy::Request {
    let mut context = match &request.context {
        Some(Value::Object(map)) => map.clone(),
        _ => serde_json::Map::new(),
    };
    context.remove("lineage");
    if let Some(lineage) = lineage {
        context.insert("lineage".into(), lineage);
    }
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
