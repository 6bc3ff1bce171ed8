//! `writ policy`: check a Cedar policy set before an authority applies it — validate it,
//! run decision cases against it, print its digest.
//!
//! A policy directory holds `writ.cedarschema`, `policies.cedar` and `entities.json` (which
//! may be left out: no entities). Exit statuses: 0 when the set is valid (and every case
//! holds); 77 when the set is refused (a text that does not parse, a validation error) or a
//! case does not hold, with the reasons on stderr and in `--json` output; 64 when a file
//! cannot be read or the cases file is malformed.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::{json, Value};
use writ_policy::{
    parse_cases, run_cases, Issue, Limits, PolicySet, SourceError, ENTITIES_FILE, EXAMPLE_CASES,
    EXAMPLE_ENTITIES, EXAMPLE_POLICIES, EXAMPLE_SCHEMA, POLICIES_FILE, SCHEMA_FILE,
};

use crate::client::{Auth, ClientError, ServerArgs};
use crate::datadir;
use crate::error::CliError;
use crate::exit::Exit;
use crate::input;

/// The example decision cases' file name, beside the example set.
pub const CASES_FILE: &str = "cases.json";

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Validate DIR's policy set against its schema (Cedar strict mode, plus writ's rules).
    ///
    /// Prints `ok`, the digest and the policy ids; exit 77 with every error when the set
    /// is refused.
    Validate(DirArgs),
    /// Run decision cases (a JSON file, or - for standard input) against DIR's policy set.
    ///
    /// Each case is {"name", "request": {"principal": {"id","role","groups"}, "action",
    /// "resource", "args", "context"}, "expect": "permit"|"deny"|"pending", "policies"?:
    /// [ids], "reason"?, "lifetime_secs"?, "uses"?, "approvals_required"?,
    /// "approver_group"?, "approvals"?: [{"id","groups"}]}. Exit 77 when any case does not
    /// hold.
    Test(TestArgs),
    /// Print the digest of DIR's policy set (the writ's `pol.digest`).
    ///
    /// SHA-256 of the RFC 8785 canonical JSON of {"entities": <entities.json>, "format":
    /// "writ-policy-set-v1", "policies": <policies.cedar text>, "schema": <writ.cedarschema
    /// text>}. The set must parse; it is not validated.
    Digest(DirArgs),
    /// Validate DIR's policy set, then make it the one in force at a running authority
    /// (admin token).
    ///
    /// A set that does not validate is refused here (exit 64) and never sent. The authority
    /// validates it again, logs it (a `policy` entry with its digest and full text) and
    /// decides every later request with it. Writs issued under the previous set stay valid
    /// until they expire, unless that set's digest is revoked (`writ revoke --policy`).
    #[command(after_help = "\
Example:
  writ policy validate ./policy && writ policy test ./policy ./policy/cases.json
  WRIT_URL=https://writ.example.com WRIT_TOKEN_FILE=admin.token writ policy apply ./policy
  writ revoke --policy OLD_DIGEST --reason 'replaced'   # optional: retire the old set")]
    Apply(ApplyArgs),
    /// Print the policy set in force at a running authority (admin token): its digest,
    /// policy ids and retired digests; --out DIR writes its three files.
    #[command(after_help = "\
Example:
  writ policy show --url https://writ.example.com --token-file admin.token --out ./current
  $EDITOR ./current/policies.cedar && writ policy apply ./current")]
    Show(ShowArgs),
}

#[derive(Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    dir: DirArgs,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Args)]
pub struct ShowArgs {
    /// Write writ.cedarschema, policies.cedar and entities.json into DIR (created; existing
    /// files are never replaced).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the authority's answer as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Args)]
pub struct DirArgs {
    /// The policy directory: writ.cedarschema, policies.cedar, entities.json.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct TestArgs {
    #[command(flatten)]
    dir: DirArgs,
    /// The cases file (JSON array), or - for standard input.
    #[arg(value_name = "CASES")]
    cases: String,
    /// A writ's lifetime when no deciding policy sets @lifetime.
    #[arg(long, value_name = "SECS", default_value_t = Limits::DEFAULT_LIFETIME_SECS)]
    default_lifetime: u64,
    /// The longest lifetime a policy may grant.
    #[arg(long, value_name = "SECS", default_value_t = Limits::DEFAULT_MAX_LIFETIME_SECS)]
    max_lifetime: u64,
    /// The most uses a policy may grant.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT_MAX_USES)]
    max_uses: u32,
}

pub fn run(cmd: PolicyCommand) -> Exit {
    let (result, json) = match &cmd {
        PolicyCommand::Validate(a) => (validate(a), a.json),
        PolicyCommand::Test(a) => (test(a), a.dir.json),
        PolicyCommand::Digest(a) => (digest(a), a.json),
        PolicyCommand::Apply(a) => return apply(a).unwrap_or_else(|e| e.report(a.dir.json)),
        PolicyCommand::Show(a) => return show(a).unwrap_or_else(|e| e.report(a.json)),
    };
    match result {
        Ok(exit) => exit,
        Err(e) => e.report(json),
    }
}

/// Reads and validates the policy set in `dir`, for a program that is about to use it
/// (`writ serve`): a set that does not parse or validate is a usage error naming every
/// finding.
pub fn load_dir(dir: &Path) -> Result<PolicySet, CliError> {
    let texts = read_dir(dir)?;
    load_texts(dir, &texts)
}

/// Validates the texts read from `dir`, as [`load_dir`] does.
fn load_texts(dir: &Path, texts: &Texts) -> Result<PolicySet, CliError> {
    PolicySet::from_texts(&texts.schema, &texts.policies, &texts.entities).map_err(|e| {
        let mut message = format!("policy set in `{}`: {e}", dir.display());
        if let writ_policy::Error::Invalid(report) = &e {
            message = format!("the policy set in `{}` does not validate:", dir.display());
            for issue in &report.errors {
                message.push_str(&format!("\n  {}", located(dir, issue)));
            }
        }
        CliError::Usage(message)
    })
}

/// Creates `dir` and writes writ's example policy set into it (schema, policies, entities
/// and the decision cases that exercise them); it fails rather than replace a file.
pub fn write_examples(dir: &Path) -> Result<(), CliError> {
    datadir::ensure_dir(dir)?;
    for (name, text) in [
        (SCHEMA_FILE, EXAMPLE_SCHEMA),
        (POLICIES_FILE, EXAMPLE_POLICIES),
        (ENTITIES_FILE, EXAMPLE_ENTITIES),
        (CASES_FILE, EXAMPLE_CASES),
    ] {
        datadir::write_new(&dir.join(name), text.as_bytes(), 0o644)?;
    }
    Ok(())
}

/// The three texts of a policy directory. A missing entities file means no entities.
struct Texts {
    schema: String,
    policies: String,
    entities: String,
}

fn read_dir(dir: &Path) -> Result<Texts, CliError> {
    if !dir.is_dir() {
        return Err(CliError::Usage(format!(
            "`{}` is not a policy directory",
            dir.display()
        )));
    }
    let entities_path = dir.join(ENTITIES_FILE);
    Ok(Texts {
        schema: input::read_file(&dir.join(SCHEMA_FILE), "schema")?,
        policies: input::read_file(&dir.join(POLICIES_FILE), "policies")?,
        entities: if entities_path.exists() {
            input::read_file(&entities_path, "entities")?
        } else {
            String::new()
        },
    })
}

/// Reads and validates DIR's set; `Err(exit)` when it is refused (already reported).
fn load_valid(dir: &Path, json: bool) -> Result<Result<PolicySet, Exit>, CliError> {
    let texts = read_dir(dir)?;
    let set = match PolicySet::parse(&texts.schema, &texts.policies, &texts.entities) {
        Ok(set) => set,
        Err(e) => return Ok(Err(refuse_source(dir, &e, json))),
    };
    let report = set.validate();
    for w in &report.warnings {
        eprintln!("writ: warning: {}", located(dir, w));
    }
    if !report.is_ok() {
        for e in &report.errors {
            eprintln!("writ: error: {}", located(dir, e));
        }
        let reason = format!(
            "the policy set in `{}` does not validate: {} error(s)",
            dir.display(),
            report.errors.len()
        );
        eprintln!("writ: policy_invalid: {reason}");
        if json {
            println!(
                "{}",
                json!({"valid": false, "code": "policy_invalid", "reason": reason,
                       "errors": report.errors, "warnings": report.warnings})
            );
        }
        return Ok(Err(Exit::Denied));
    }
    Ok(Ok(set))
}

fn refuse_source(dir: &Path, e: &SourceError, json: bool) -> Exit {
    let reason = format!("`{}`: {e}", dir.join(file_name(e.file())).display());
    eprintln!("writ: policy_syntax: {reason}");
    if json {
        let issue = json!({"file": e.file(), "message": e.to_string()});
        println!(
            "{}",
            json!({"valid": false, "code": "policy_syntax", "reason": reason,
                   "errors": [issue], "warnings": []})
        );
    }
    Exit::Denied
}

fn file_name(file: &str) -> &'static str {
    match file {
        "schema" => SCHEMA_FILE,
        "entities" => ENTITIES_FILE,
        _ => POLICIES_FILE,
    }
}

/// An issue with its file's real path.
fn located(dir: &Path, issue: &Issue) -> String {
    let mut text = dir.join(file_name(&issue.file)).display().to_string();
    if let Some(line) = issue.line {
        text.push_str(&format!(":{line}"));
        if let Some(column) = issue.column {
            text.push_str(&format!(":{column}"));
        }
    }
    if let Some(policy) = &issue.policy {
        text.push_str(&format!(": policy `{policy}`"));
    }
    format!("{text}: {}", issue.message)
}

fn validate(args: &DirArgs) -> Result<Exit, CliError> {
    let set = match load_valid(&args.dir, args.json)? {
        Ok(set) => set,
        Err(exit) => return Ok(exit),
    };
    let warnings = set.validate().warnings;
    if args.json {
        println!(
            "{}",
            json!({"valid": true, "digest": set.digest(), "policies": set.policy_ids(),
                   "warnings": warnings})
        );
    } else {
        println!("ok {}", set.digest());
        println!("policies: {}", set.policy_ids().join(", "));
    }
    Ok(Exit::Success)
}

fn test(args: &TestArgs) -> Result<Exit, CliError> {
    let json = args.dir.json;
    let cases_text = input::read_file_or_stdin(&args.cases, "cases")?;
    let cases = parse_cases(&cases_text).map_err(|e| CliError::Usage(e.to_string()))?;
    let set = match load_valid(&args.dir.dir, json)? {
        Ok(set) => set,
        Err(exit) => return Ok(exit),
    };
    let limits = Limits {
        default_lifetime_secs: args.default_lifetime,
        max_lifetime_secs: args.max_lifetime,
        max_uses: args.max_uses,
    };
    let results = run_cases(&set, &cases, &limits);
    let failed = results.iter().filter(|r| !r.passed()).count();
    if json {
        let cases: Vec<Value> = results
            .iter()
            .map(|r| {
                json!({"name": r.name, "passed": r.passed(), "expected": r.expected,
                       "decision": r.decision, "mismatches": r.mismatches})
            })
            .collect();
        println!(
            "{}",
            json!({"passed": failed == 0, "digest": set.digest(), "total": results.len(),
                   "failed": failed, "cases": cases})
        );
    } else {
        for r in &results {
            println!("{r}");
        }
        println!(
            "{} cases: {} passed, {failed} failed (policy set {})",
            results.len(),
            results.len() - failed,
            set.digest()
        );
    }
    if failed == 0 {
        return Ok(Exit::Success);
    }
    for r in results.iter().filter(|r| !r.passed()) {
        eprintln!("writ: case_mismatch: {r}");
    }
    Ok(Exit::Denied)
}

fn digest(args: &DirArgs) -> Result<Exit, CliError> {
    let texts = read_dir(&args.dir)?;
    let set = match PolicySet::parse(&texts.schema, &texts.policies, &texts.entities) {
        Ok(set) => set,
        Err(e) => return Ok(refuse_source(&args.dir, &e, args.json)),
    };
    if args.json {
        println!("{}", json!({"digest": set.digest()}));
    } else {
        println!("{}", set.digest());
    }
    Ok(Exit::Success)
}

/// The authority's answer to `PUT /v1/policy`.
#[derive(Deserialize)]
struct Applied {
    digest: String,
    log_index: u64,
    #[serde(default)]
    policy_ids: Vec<String>,
}

fn apply(args: &ApplyArgs) -> Result<Exit, ClientError> {
    let dir = &args.dir.dir;
    let mut texts = read_dir(dir)?;
    if texts.entities.trim().is_empty() {
        texts.entities = "[]".into();
    }
    // Refused here, never sent: the same check `writ serve` makes before it starts.
    let set = load_texts(dir, &texts)?;
    let client = args.server.connect(Auth::Token)?;
    let body =
        json!({"schema": texts.schema, "policies": texts.policies, "entities": texts.entities});
    let raw: Value = client.put_json("/v1/policy", &body)?;
    let applied: Applied = serde_json::from_value(raw.clone()).map_err(|e| {
        CliError::Unavailable(format!(
            "the authority's answer is not a policy receipt: {e}"
        ))
    })?;
    let local = set.digest().to_hex();
    if applied.digest != local {
        eprintln!(
            "writ: warning: the authority reports digest {} for a set whose digest here is \
             {local}",
            applied.digest
        );
    }
    if args.dir.json {
        println!("{raw}");
    } else {
        println!(
            "applied {} (log index {})",
            applied.digest, applied.log_index
        );
        println!("policies: {}", applied.policy_ids.join(", "));
    }
    Ok(Exit::Success)
}

/// The authority's answer to `GET /v1/policy`.
#[derive(Deserialize)]
struct InForce {
    digest: String,
    #[serde(default)]
    policy_ids: Vec<String>,
    #[serde(default)]
    retired: Vec<String>,
    schema: String,
    policies: String,
    entities: String,
}

fn show(args: &ShowArgs) -> Result<Exit, ClientError> {
    let client = args.server.connect(Auth::Token)?;
    let raw: Value = client.get_json("/v1/policy")?;
    let set: InForce = serde_json::from_value(raw.clone()).map_err(|e| {
        CliError::Unavailable(format!("the authority's answer is not a policy set: {e}"))
    })?;
    if let Some(out) = &args.out {
        datadir::ensure_dir(out)?;
        for (name, text) in [
            (SCHEMA_FILE, &set.schema),
            (POLICIES_FILE, &set.policies),
            (ENTITIES_FILE, &set.entities),
        ] {
            datadir::write_new(&out.join(name), text.as_bytes(), 0o644)?;
        }
    }
    if args.json {
        println!("{raw}");
    } else {
        println!("digest   {}", set.digest);
        println!("policies {}", set.policy_ids.join(", "));
        if !set.retired.is_empty() {
            println!("retired  {}", set.retired.join(", "));
        }
        match &args.out {
            Some(out) => println!("written to {}", out.display()),
            None => println!("(--out DIR writes the schema, policies and entities)"),
        }
    }
    Ok(Exit::Success)
}
