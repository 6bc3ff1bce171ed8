//! `writ verify`: check a writ for an exact action, as a gate would, without running it.

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};
use writ_core::{
    parse_unverified, Claims, Denial, DenyCode, Expectation, KeyId, PolicyAcceptance, Sha256Digest,
    StateChecks, Verdict, VerifiedWrit, Verifier, VerifierOptions, DEFAULT_SKEW_SECS,
    MAX_SKEW_SECS,
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
/// A delegated writ is checked link by link with its ancestors: either the writ plus
/// --ancestor FILE for each ancestor (parent first), or --chain FILE... naming the writ and
/// all its ancestors as files, child first (the writ to check, its parent, grandparent, …,
/// the root). --chain must reach the root: a chain whose last file still carries `lin` is
/// denied (lineage_inconsistency). The action flags stay required with --chain: the leaf is
/// verified for that exact action, and every link above it for the delegation rules.
///
/// Example:
///   writ verify "$WRIT" --jwks authority/jwks.json --issuer https://writ.example \
///     --audience gate-1 --action exec --resource /usr/bin/git \
///     --args '{"argv":["git","status"],"cwd":"/work","env":{}}' --json
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct VerifyArgs {
    /// The compact writ, or `-` to read it from standard input.
    #[arg(
        value_name = "TOKEN",
        required_unless_present = "chain",
        conflicts_with = "chain"
    )]
    token: Option<String>,
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
    #[arg(long = "ancestor", value_name = "FILE", conflicts_with = "chain")]
    ancestors: Vec<PathBuf>,
    /// The writ and its ancestors as files, child first, up to the root (replaces TOKEN and
    /// --ancestor); JSON output then lists every link in `chain`, leaf first.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    chain: Vec<PathBuf>,
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
    /// With --chain: the ancestors' compact writs, parent first (verified when permitted).
    chain: Option<Vec<String>>,
}

/// One link of a verified chain, as printed.
fn link_json(claims: &Claims, kid: &str, digest: Sha256Digest) -> Value {
    json!({
        "jti": claims.jti,
        "sub": claims.sub,
        "aud": claims.aud,
        "depth": claims.lin.as_ref().map_or(0, |l| l.depth),
        "exp": claims.exp,
        "kid": kid,
        "writ_sha256": digest.to_hex(),
    })
}

impl Outcome {
    fn deny(code: DenyCode, detail: String) -> Self {
        Outcome {
            verdict: Verdict::Deny(Denial {
                code,
                detail: detail.into(),
            }),
            consumed: false,
            chain: None,
        }
    }

    /// The chain, leaf first, for JSON output: `None` without --chain.
    fn chain_json(&self, leaf: &VerifiedWrit) -> Option<Value> {
        let ancestors = self.chain.as_ref()?;
        let mut links = vec![link_json(leaf.claims(), leaf.kid().as_str(), leaf.digest())];
        for compact in ancestors {
            // Already authenticated by the verifier; parsed again only to print it.
            match parse_unverified(compact) {
                Ok(w) => links.push(link_json(w.claims(), w.kid(), w.digest())),
                Err(_) => links.push(Value::Null),
            }
        }
        Some(Value::Array(links))
    }

    fn report(&self, json: bool) -> Exit {
        match &self.verdict {
            Verdict::Permit(writ) => {
                let claims = writ.claims();
                let chain = self.chain_json(writ);
                if json {
                    let mut out = json!({
                            "decision": "permit",
                            "code": Value::Null,
                            "reason": Value::Null,
                            "claims": claims,
                            "kid": writ.kid().as_str(),
                            "writ_sha256": writ.digest().to_hex(),
                            "consumed": self.consumed,
                            "remaining_uses": writ.remaining_uses(),
                    });
                    if let Some(chain) = chain {
                        out["chain"] = chain;
                    }
                    println!("{out}");
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
                    if let Some(Value::Array(links)) = &chain {
                        let ids: Vec<String> = links
                            .iter()
                            .map(|l| match &l["jti"] {
                                Value::String(s) => s.clone(),
                                _ => "?".into(),
                            })
                            .collect();
                        println!(
                            "chain: {} link(s), leaf to root: {}",
                            links.len(),
                            ids.join(" <- ")
                        );
                    }
                }
                Exit::Success
            }
            Verdict::Deny(denial) => {
                eprintln!("writ: denied: {}: {}", denial.code.as_str(), denial.detail);
                if json {
                    let mut out = json!({
                        "decision": "deny",
                        "code": denial.code.as_str(),
                        "reason": denial.detail,
                        "claims": Value::Null,
                    });
                    if self.chain.is_some() {
                        out["chain"] = Value::Null;
                    }
                    println!("{out}");
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
    let (token, ancestor_texts) = match (&args.token, args.chain.split_first()) {
        (None, Some((leaf, rest))) => (
            input::read_file(leaf, "writ")?.trim().to_owned(),
            read_writ_files(rest, "ancestor writ")?,
        ),
        (Some(token), None) => (
            input::read_token(token)?,
            read_writ_files(&args.ancestors, "ancestor writ")?,
        ),
        _ => {
            return Err(CliError::Usage(
                "give either the writ (TOKEN, with --ancestor) or --chain".into(),
            ))
        }
    };
    let ancestors: Vec<&str> = ancestor_texts.iter().map(String::as_str).collect();
    let chain = (!args.chain.is_empty()).then(|| ancestor_texts.clone());
    // --chain names the whole chain: a last file that is itself delegated stops short of
    // the root. Its ancestry would then go unchecked, so this is denied — after every
    // stateless check (offline), and before anything could be consumed.
    let chain_stops_short = chain.is_some()
        && ancestors.is_empty()
        && parse_unverified(&token).is_ok_and(|w| w.claims().lin.is_some());
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
                return Ok(Outcome {
                    chain,
                    ..Outcome::deny(
                        DenyCode::EnvironmentIntegrityFailure,
                        format!("cannot measure the environment: {e}"),
                    )
                })
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

    if chain_stops_short {
        let verdict = match verifier.verify(&token, &expect, now, StateChecks::Offline) {
            Verdict::Permit(_) => Verdict::Deny(Denial::new(
                DenyCode::LineageInconsistency,
                "--chain ends at a delegated writ: name its ancestors up to the root",
            )),
            deny => deny,
        };
        return Ok(Outcome {
            verdict,
            consumed: false,
            chain,
        });
    }
    let Some(db) = &args.replay_db else {
        let verdict = verifier.verify(&token, &expect, now, StateChecks::Offline);
        return Ok(Outcome {
            verdict,
            consumed: false,
            chain,
        });
    };
    let store = match SqliteReplayStore::open(db).and_then(|s| s.purge(now).map(|_| s)) {
        Ok(store) => store,
        Err(e) => {
            return Ok(Outcome {
                chain,
                ..Outcome::deny(
                    DenyCode::StatusUnavailable,
                    format!("replay store `{}`: {e}", db.display()),
                )
            })
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
    Ok(Outcome {
        verdict,
        consumed,
        chain,
    })
}

/// Compact writs from files, surrounding whitespace removed.
fn read_writ_files(paths: &[PathBuf], what: &str) -> Result<Vec<String>, CliError> {
    paths
        .iter()
        .map(|p| input::read_file(p, what).map(|t| t.trim().to_owned()))
        .collect()
}
