//! The bare CPU bound: what one permit costs in CPU alone, in process and on one thread —
//! the Cedar decision and the signed writ, without HTTP, authentication or the durable log.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use writ_core::{canonical, sign, Claims, Jti, PolicyRef, Scope, SigningKey};
use writ_policy::{
    Decision, Limits, PolicySet, Principal, Request, EXAMPLE_ENTITIES, EXAMPLE_POLICIES,
    EXAMPLE_SCHEMA,
};

use crate::error::CliError;

/// What the measurement found.
#[derive(Clone, Debug, Serialize)]
pub struct CpuBound {
    /// Decisions measured.
    pub iterations: u64,
    /// µs per Cedar evaluation (`PolicySet::evaluate`, the example set, `git status`).
    pub evaluate_us: f64,
    /// µs per writ: arguments digest (RFC 8785 + SHA-256), claims, random `jti`, Ed25519 JWS.
    pub sign_us: f64,
    /// µs per decision: the two together.
    pub decision_us: f64,
    /// CPUs this process may use (`std::thread::available_parallelism`).
    pub cores: usize,
    /// cores × 1e6 / decision_us: permits per second if every core did nothing else.
    pub bound_per_sec: f64,
}

/// Decides and signs the benchmark's request on this thread for about `budget`.
pub fn measure(budget: Duration) -> Result<CpuBound, CliError> {
    let set = PolicySet::from_texts(EXAMPLE_SCHEMA, EXAMPLE_POLICIES, EXAMPLE_ENTITIES)
        .map_err(|e| CliError::Internal(format!("the example policy set: {e}")))?;
    let limits = Limits::default();
    // As the authority builds it for a registered agent without groups and no context.
    let args = json!({"argv": ["git", "status"], "cwd": "/work", "env": {}});
    let request = Request {
        principal: Principal {
            id: "bench-agent".into(),
            role: "agent".into(),
            groups: Vec::new(),
        },
        action: "exec".into(),
        resource: "/usr/bin/git".into(),
        args: args.clone(),
        context: json!({}),
    };
    let key = SigningKey::from_seed(&*crate::datadir::random_seed()?);
    let now = crate::input::now()?.as_secs();

    let once = || -> Result<(Duration, Duration), CliError> {
        let t0 = Instant::now();
        let decision = set.evaluate(black_box(&request), &limits);
        let t1 = Instant::now();
        let Decision::Permit {
            policy_ids,
            lifetime_secs,
            uses,
            delegation,
        } = decision
        else {
            return Err(CliError::Internal(format!(
                "the example policy set does not permit the benchmark's request: {}",
                decision.as_str()
            )));
        };
        let args_sha256 = canonical::args_digest(black_box(&args))
            .map_err(|e| CliError::Internal(e.to_string()))?;
        let mut jti = [0u8; 16];
        getrandom::getrandom(&mut jti).map_err(|e| CliError::Internal(e.to_string()))?;
        let claims = Claims {
            iss: "http://127.0.0.1:7070".into(),
            sub: request.principal.id.clone(),
            aud: "bench-gate".into(),
            iat: now,
            nbf: now,
            exp: now + lifetime_secs,
            jti: Jti::from_bytes(jti),
            scope: Scope {
                action: request.action.clone(),
                resource: request.resource.clone(),
                args_sha256,
            },
            pol: PolicyRef {
                digest: set.digest(),
                ids: policy_ids,
            },
            uses,
            cnf: None,
            env: None,
            lin: None,
            del: delegation,
            gov: None,
        };
        let writ = sign(&claims, &key).map_err(|e| CliError::Internal(e.to_string()))?;
        black_box(writ);
        Ok((t1 - t0, t1.elapsed()))
    };

    // Warm caches and lazily built state first.
    for _ in 0..10 {
        once()?;
    }
    let (mut evaluate, mut signing, mut iterations) = (Duration::ZERO, Duration::ZERO, 0u64);
    let start = Instant::now();
    while start.elapsed() < budget || iterations < 10 {
        let (e, s) = once()?;
        evaluate += e;
        signing += s;
        iterations += 1;
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / iterations as f64;
    let (evaluate_us, sign_us) = (per(evaluate), per(signing));
    let decision_us = evaluate_us + sign_us;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(CpuBound {
        iterations,
        evaluate_us,
        sign_us,
        decision_us,
        cores,
        bound_per_sec: cores as f64 * 1e6 / decision_us,
    })
}
