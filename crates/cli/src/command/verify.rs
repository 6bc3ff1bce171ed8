//! `writ verify`: check a writ for an exact action, as a gate would, without running it.

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};
use writ_core::{
    Denial, DenyCode, Expectation, KeyId, PolicyAcceptance, Sha256Digest, StateChecks, Verdict,
    Verifier, VerifierOptions, DEFAULT_SKEW_SECS, MAX_SKEW_SECS,
};
use writ_gate::EnvSpec;
use writ_store::SqliteReplayStore;

use crate::error::CliError;
use crate::exit::Exit;
use crate::input;

/// Verify a writ for an exact action, as a gate would.
///
/// Checks, in order: shape and header, key, signature, issuer, audience, time, scope
/// (action, resource, arguments digest), policy digest, environment, executor key, lineage;
/// then, only with --replay-db, revocation and consumption of one use. Without --replay-db
/// nothing is consumed.
///
/// Example:
///   writ verify "$WRIT" --jwks authority/jwks.json --issuer https://writ.example \
///     --audience gate-1 --action exec --resource /usr/bin/git \
///     --args '{"argv":["git","status"],"cwd":"/work","env":{}}' --json
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct VerifyArgs {
    /// The compact writ, or `-` to read it from standard input.
    #[arg(value_name = "TOKEN")]
    token: String,
    /// The authority's public keys (JWKS file).
    #[arg(long, value_name = "FILE")]
    jwks: PathBuf,
    /// The trusted issuer (`iss`).
    #[arg(long, value_name = "ISS")]
    issuer: String,
    /// This gate's principal; the writ's `aud` must equal it.
    #[arg(long, value_name = "AUD")]
    audience: String,
    /// The action about to run.
    #[arg(long, value_name = "A")]
    action: String,
    /// The resource it acts on.
    #[arg(long, value_name = "R")]
    resource: String,
    /// The exact arguments as JSON, or @FILE.
    #[arg(long, value_name = "JSON")]
    args: String,
    /// Measure the environment with this spec; the writ must be bound to the result.
    #[arg(long, value_name = "FILE")]
    env_spec: Option<PathBuf>,
    /// The executor's key (PEM private key or JWK); the writ's `cnf` must name it.
    #[arg(long, value_name = "FILE")]
    holder_key: Option<PathBuf>,
    /// Accepted policy digest (repeatable); when given, any other digest is denied.
    #[arg(long = "policy-digest", value_name = "D")]
    policy_digests: Vec<String>,
    /// An ancestor writ file for a delegated writ (repeatable, parent first).
    #[arg(long = "ancestor", value_name = "FILE")]
    ancestors: Vec<PathBuf>,
    /// Durable replay store (SQLite): check revocation and consume one use.
    #[arg(long, value_name = "FILE")]
    replay_db: Option<PathBuf>,
    /// Clock skew allowance in seconds (at most 300).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_SKEW_SECS)]
    skew: u64,
    /// Print one JSON object: decision, code, reason, claims.
    #[arg(long)]
    json: bool,
}

pub fn run(args: VerifyArgs) -> Exit {
    match verify(&args) {
        Ok(outcome) => outcome.report(args.json),
        Err(e) => e.report(args.json),
    }
}

/// What a verification ended in.
struct Outcome {
    verdict: Verdict,
    consumed: bool,
}

impl Outcome {
    fn deny(code: DenyCode, detail: String) -> Self {
        Outcome {
            verdict: Verdict::Deny(Denial {
                code,
                detail: detail.into(),
            }),
            consumed: false,
        }
    }

    fn report(&self, json: bool) -> Exit {
        match &self.verdict {
            Verdict::Permit(writ) => {
                let claims = writ.claims();
                if json {
                    println!(
                        "{}",
                        json!({
                            "decision": "permit",
                            "code": Value::Null,
                            "reason": Value::Null,
                            "claims": claims,
                            "kid": writ.kid().as_str(),
                            "writ_sha256": writ.digest().to_hex(),
                            "consumed": self.consumed,
                            "remaining_uses": writ.remaining_uses(),
                        })
                    );
                } else {
                    println!(
                        "permit: writ {} lets `{}` run `{}` on `{}` until {}{}",
                        claims.jti,
                        claims.aud,
                        claims.scope.action,
                        claims.scope.resource,
                        claims.exp,
                        if self.consumed {
                            " (one use consumed)"
                        } else {
                            " (not consumed)"
                        }
                    );
                }
                Exit::Success
            }
            Verdict::Deny(denial) => {
                eprintln!("writ: denied: {}: {}", denial.code.as_str(), denial.detail);
                if json {
                    println!(
                        "{}",
                        json!({
                            "decision": "deny",
                            "code": denial.code.as_str(),
                            "reason": denial.detail,
                            "claims": Value::Null,
                        })
                    );
                }
                if denial.code == DenyCode::StatusUnavailable {
                    Exit::Unavailable
                } else {
                    Exit::Denied
                }
            }
        }
    }
}

fn verify(args: &VerifyArgs) -> Result<Outcome, CliError> {
    // Inputs first: a bad command line is a usage error, never a verdict.
    if args.skew > MAX_SKEW_SECS {
        return Err(CliError::Usage(format!(
            "--skew is at most {MAX_SKEW_SECS} seconds"
        )));
    }
    let keys = input::read_jwks(&args.jwks)?;
    let call_args = input::read_json(&args.args, "--args")?;
    let policy_digests = args
        .policy_digests
        .iter()
        .map(|d| {
            Sha256Digest::from_hex(d).ok_or_else(|| {
                CliError::Usage(format!(
                    "--policy-digest `{d}` is not 64 lowercase hex characters"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let executor: Option<KeyId> = args
        .holder_key
        .as_deref()
        .map(input::read_key_id)
        .transpose()?;
    let spec = args
        .env_spec
        .as_deref()
        .map(|p| EnvSpec::load(p).map_err(|e| CliError::Usage(e.to_string())))
        .transpose()?;
    let ancestor_texts = args
        .ancestors
        .iter()
        .map(|p| input::read_file(p, "ancestor writ").map(|t| t.trim().to_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    let ancestors: Vec<&str> = ancestor_texts.iter().map(String::as_str).collect();
    let token = input::read_token(&args.token)?;
    let now = input::now()?;

    let verifier = Verifier::new(args.issuer.clone(), keys)
        .with_options(VerifierOptions {
            skew_secs: args.skew,
        })
        .ok_or_else(|| CliError::Usage("invalid --skew".into()))?;

    // The environment is measured right before the check; a gate that cannot measure denies.
    let environment = match &spec {
        None => None,
        Some(spec) => match writ_gate::measure(spec, &|n| {
            std::env::var_os(n).map(|v| v.to_string_lossy().into_owned())
        }) {
            Ok(m) => Some(m.digest()),
            Err(e) => {
                return Ok(Outcome::deny(
                    DenyCode::EnvironmentIntegrityFailure,
                    format!("cannot measure the environment: {e}"),
                ))
            }
        },
    };

    let mut expect = Expectation::new(&args.audience, &args.action, &args.resource, &call_args);
    expect.environment = environment.as_ref();
    expect.executor = executor.as_ref();
    expect.ancestors = &ancestors;
    if !policy_digests.is_empty() {
        expect.policy = PolicyAcceptance::OneOf(&policy_digests);
    }

    let Some(db) = &args.replay_db else {
        let verdict = verifier.verify(&token, &expect, now, StateChecks::Offline);
        return Ok(Outcome {
            verdict,
            consumed: false,
        });
    };
    let store = match SqliteReplayStore::open(db).and_then(|s| s.purge(now).map(|_| s)) {
        Ok(store) => store,
        Err(e) => {
            return Ok(Outcome::deny(
                DenyCode::StatusUnavailable,
                format!("replay store `{}`: {e}", db.display()),
            ))
        }
    };
    let verdict = verifier.verify(
        &token,
        &expect,
        now,
        StateChecks::Consume {
            revocation: &store,
            replay: &store,
        },
    );
    let consumed = verdict.is_permit();
    Ok(Outcome { verdict, consumed })
}
