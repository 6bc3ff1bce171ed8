//! Consumption at the authority: full verification, proof of possession, revocation and the
//! atomic mark in one durable transaction, a `consumption` log entry, and a signed answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use writ_core::{
    parse_unverified, sign_answer, verify_pop, ConsumeAnswer, Consumed, Denial, DenyCode,
    Expectation, Jti, PolicyAcceptance, ReplayStore, RevocationSubject, Sha256Digest, StateChecks,
    StateError, UnixTime, Verdict, Verifier, DEFAULT_SKEW_SECS,
};
use writ_log::canonical_entry;
use writ_store::{ConsumeJob, Principal, RevocationStore, Role};

use crate::authority::Authority;
use crate::error::ApiError;

/// What a gate sends to consume one use of a writ.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumeRequest {
    /// The compact writ.
    pub writ: String,
    /// The action the gate is about to run.
    pub action: String,
    /// Its resource.
    pub resource: String,
    /// Its exact arguments.
    #[schema(value_type = Object)]
    pub args: Value,
    /// Digest of the environment the gate measured, when it has an environment spec.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub environment_sha256: Option<Sha256Digest>,
    /// The gate's fresh nonce, echoed in the signed answer.
    pub nonce: String,
    /// Proof of possession of the `cnf` key (`writ-pop+jwt`), required when the writ has `cnf`.
    #[serde(default)]
    pub pop: Option<String>,
}

/// The answer: the verdict, and the same verdict signed by the authority.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ConsumeResponse {
    /// `permit` or `deny`.
    pub decision: String,
    /// The denial code, when denied.
    pub code: Option<String>,
    /// Why, when denied.
    pub reason: Option<String>,
    /// The signed answer (`writ-consumed+jwt`) a gate must check before it acts.
    pub answer: String,
    /// Index of the `consumption` entry in the log.
    pub log_index: u64,
}

/// Consumed ids are purged after this many consumptions.
const PURGE_EVERY: u64 = 256;

pub(crate) struct Consumer {
    store: Box<dyn RevocationStore>,
    count: AtomicU64,
}

impl Consumer {
    pub(crate) fn new(store: Box<dyn RevocationStore>) -> Self {
        Self {
            store,
            count: AtomicU64::new(0),
        }
    }

    pub(crate) fn store(&self) -> &dyn RevocationStore {
        &*self.store
    }
}

/// The `consumption` entry.
fn consumption_entry(
    decision: &str,
    code: Option<&str>,
    executor: &str,
    jti: Option<&str>,
    writ_sha256: &Sha256Digest,
    remaining: Option<u32>,
    at: u64,
) -> Value {
    json!({
        "type": "consumption",
        "decision": decision,
        "code": code,
        "executor": executor,
        "jti": jti,
        "writ_sha256": writ_sha256.to_hex(),
        "remaining_uses": remaining,
        "at": at,
    })
}

/// The replay store the verifier consumes through at the authority: the log writer checks
/// revocation, marks the id and appends the `consumption` entry in one transaction, so a use
/// is never spent without its entry (and one commit is paid, not two).
struct LoggedConsumption<'a> {
    authority: &'a Authority,
    executor: &'a str,
    writ_sha256: Sha256Digest,
    now: u64,
    /// The entry's index, once logged.
    index: Mutex<Option<u64>>,
}

impl ReplayStore for LoggedConsumption<'_> {
    fn consume(
        &self,
        jti: &Jti,
        uses: u32,
        keep_until: UnixTime,
        subject: &RevocationSubject<'_>,
    ) -> Result<Consumed, StateError> {
        let (executor, digest, now, id) = (
            self.executor.to_owned(),
            self.writ_sha256,
            self.now,
            jti.to_string(),
        );
        let job = ConsumeJob {
            jti: *jti,
            uses,
            keep_until,
            ancestors: subject.ancestors.to_vec(),
            principals: subject.principals.map(str::to_owned),
            entry: Box::new(move |consumed| {
                let (decision, code, remaining) = match consumed {
                    Consumed::Fresh { remaining } => ("permit", None, Some(remaining)),
                    Consumed::Exhausted => ("deny", Some(DenyCode::ReplayDetected), None),
                    Consumed::Revoked => ("deny", Some(DenyCode::RevokedAuthorization), None),
                };
                let entry = consumption_entry(
                    decision,
                    code.map(DenyCode::as_str),
                    &executor,
                    Some(&id),
                    &digest,
                    remaining,
                    now,
                );
                // An entry that cannot be canonical fails the job (and spends nothing).
                canonical_entry(&entry).unwrap_or_default()
            }),
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.authority
            .log()
            .consume_then(
                job,
                Box::new(move |result| {
                    let _ = tx.send(result);
                }),
            )
            .map_err(|e| StateError(e.to_string()))?;
        let (consumed, index) = rx
            .recv()
            .map_err(|_| StateError("the log writer stopped".into()))?
            .map_err(|e| StateError(e.to_string()))?;
        if let Ok(mut slot) = self.index.lock() {
            *slot = Some(index);
        }
        Ok(consumed)
    }
}

impl Authority {
    /// Consumes one use of a writ for the executor `caller`. Blocking.
    pub fn consume(
        &self,
        caller: &Principal,
        request: &ConsumeRequest,
        now: u64,
    ) -> Result<ConsumeResponse, ApiError> {
        if caller.role != Role::Executor {
            return Err(ApiError::Forbidden(caller.role.as_str()));
        }
        if request.nonce.is_empty() || request.nonce.len() > 256 {
            return Err(ApiError::BadRequest(
                "`nonce` must be 1 to 256 characters".into(),
            ));
        }
        if self.is_shared() {
            // Another node may have retired a policy or revoked a key a moment ago.
            self.refresh_revocable()?;
        }
        let consumer = self.consumer();
        if consumer
            .count
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PURGE_EVERY)
        {
            // Bounded table: ids whose writs expired (plus skew) are forgotten.
            consumer.store.purge(UnixTime(now))?;
        }
        let digest = Sha256Digest::of(request.writ.as_bytes());
        let unverified = parse_unverified(&request.writ).ok();
        let jti = unverified.as_ref().map(|w| w.claims().jti.to_string());

        // The executor key is known only by proof: a valid PoP for the writ's `cnf` key.
        let cnf = unverified.as_ref().and_then(|w| w.claims().cnf.clone());
        let mut pop_failure: Option<Denial> = None;
        let executor = match (&cnf, &request.pop) {
            (Some(cnf), Some(pop)) => {
                match verify_pop(pop, &cnf.jkt, &digest, UnixTime(now), DEFAULT_SKEW_SECS) {
                    Ok(_) => Some(cnf.jkt.clone()),
                    Err(denial) => {
                        pop_failure = Some(denial);
                        None
                    }
                }
            }
            _ => None,
        };
        let verifier = Verifier::new(self.config().issuer.clone(), self.keys());
        let retired = self.retired_policies();
        let mut expect = Expectation::new(
            &caller.name,
            &request.action,
            &request.resource,
            &request.args,
        );
        expect.environment = request.environment_sha256.as_ref();
        expect.executor = executor.as_ref();
        expect.policy = PolicyAcceptance::AnyExcept(&retired);
        // The use is spent and its entry logged in one transaction of the log writer.
        let logged = LoggedConsumption {
            authority: self,
            executor: &caller.name,
            writ_sha256: digest,
            now,
            index: Mutex::new(None),
        };
        let state = StateChecks::Consume {
            revocation: consumer.store(),
            replay: &logged,
        };
        let verdict = verifier.verify(&request.writ, &expect, UnixTime(now), state);
        let logged_index = logged.index.lock().ok().and_then(|i| *i);

        let (decision, code, reason, remaining) = match &verdict {
            Verdict::Permit(w) => ("permit", None, None, w.remaining_uses()),
            Verdict::Deny(d) => {
                let detail = match (&pop_failure, d.code) {
                    (Some(p), DenyCode::RuntimeIdentityMismatch) => p.detail.to_string(),
                    _ => d.detail.to_string(),
                };
                ("deny", Some(d.code.as_str().to_owned()), Some(detail), None)
            }
        };
        let log_index = match logged_index {
            // The stateful step ran: its entry is already durable with the mark.
            Some(index) => index,
            // Denied before it: nothing was spent; the denial is logged on its own.
            None => self.append(&consumption_entry(
                decision,
                code.as_deref(),
                &caller.name,
                jti.as_deref(),
                &digest,
                remaining,
                now,
            ))?,
        };
        let answer = ConsumeAnswer {
            decision: decision.to_owned(),
            code: code.clone(),
            jti,
            writ_sha256: digest,
            nonce: request.nonce.clone(),
            iat: now,
            remaining_uses: remaining,
        };
        Ok(ConsumeResponse {
            decision: decision.to_owned(),
            code,
            reason,
            answer: sign_answer(&*self.signer(now)?, &answer),
            log_index,
        })
    }
}
