//! `writ request`: ask a running authority for a writ, as the principal whose token is used.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use writ_core::Measurement;

use crate::client::{Auth, Client, ClientError, ServerArgs};
use crate::command::approvals::{self, view};
use crate::error::CliError;
use crate::exit::Exit;
use crate::input;

/// `writ request` (its description is on the `Request` command in main.rs).
#[derive(Args)]
#[command(after_help = "\
Examples:
  export WRIT_URL=http://127.0.0.1:7070 WRIT_TOKEN_FILE=~/.config/writ/build-agent.token
  writ request --action exec --resource /usr/bin/git \\
      --args '{\"argv\":[\"git\",\"status\"],\"cwd\":\"/work\",\"env\":{}}' \\
      --audience gate-1 --purpose 'check the tree' --out writ.jws

  # A payment that policy lets through only with two approvals: wait for them.
  writ request --action pay --resource account:acme \\
      --args '{\"amount\":25000,\"currency\":\"EUR\"}' \\
      --audience payments-gate --wait --out writ.jws

When policy requires approvals the answer is pending: without --wait the request id is
printed (exit 77); approvers see it with `writ approvals list` and decide with `writ approve`
or `writ reject`; `writ approvals show ID --wait` waits for it later. See docs/approvals.md.

Exit statuses: 0 permit, 77 denied, rejected, expired or pending (or the token was refused),
64 usage error, 69 the authority is unreachable, 70 internal error.")]
pub struct RequestArgs {
    /// The action, e.g. `exec`, `tools/call`, `Bash`.
    #[arg(long, value_name = "A")]
    action: String,
    /// The resource, e.g. an executable's canonical path or `mcp:server/tool`.
    #[arg(long, value_name = "R")]
    resource: String,
    /// The exact arguments: JSON text, @FILE, or - for standard input. The writ binds
    /// their SHA-256 (RFC 8785 canonical JSON), so it holds for these arguments only.
    #[arg(long, value_name = "JSON")]
    args: String,
    /// The registered executor (gate) that will run it: the writ's `aud`.
    #[arg(long, value_name = "EXECUTOR")]
    audience: String,
    /// Extra context for policy: a JSON object, or @FILE.
    #[arg(long, value_name = "JSON")]
    context: Option<String>,
    /// Bind the writ to a runtime environment: the JSON `writ env measure` prints (or the
    /// bare measurement object).
    #[arg(long, value_name = "FILE")]
    environment: Option<PathBuf>,
    /// Bind the writ to the executor's key (`cnf`): a public JWK, or a PKCS#8 PEM private
    /// key whose public half is sent. The executor must then prove possession to use it.
    #[arg(long, value_name = "FILE")]
    executor_key: Option<PathBuf>,
    /// Why the action is needed (kept in the writ and the log).
    #[arg(long, value_name = "P")]
    purpose: Option<String>,
    /// A ticket reference (kept in the writ and the log).
    #[arg(long, value_name = "T")]
    ticket: Option<String>,
    /// Ask for a child of this writ (a file with the compact parent writ): the request must
    /// fit the parent's `del`, the child expires no later than the parent, and carries `lin`.
    #[arg(long, value_name = "FILE")]
    parent: Option<PathBuf>,
    /// Write the compact writ to FILE (mode 0600) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// When approvals are required, wait for them (long polls), then end as a plain
    /// request does: the writ on permit, exit 77 when rejected, denied or expired.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds (exit 77, still pending).
    #[arg(long, value_name = "N", default_value_t = approvals::DEFAULT_WAIT_SECS, requires = "wait")]
    wait_secs: u64,
    /// Print the authority's whole answer as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// The authority's answer to `POST /v1/authorize`.
#[derive(Deserialize)]
struct Answer {
    decision: String,
    #[serde(default)]
    writ: Option<String>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    expires_at: Option<u64>,
    log_index: u64,
    #[serde(default)]
    reasons: Vec<Value>,
    /// Pending: the request approvers decide on.
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    approvals_required: Option<u32>,
    #[serde(default)]
    approver_group: Option<String>,
}

pub fn run(args: RequestArgs) -> Exit {
    match request(&args) {
        Ok(exit) => exit,
        Err(e) => e.report(args.json),
    }
}

/// JSON inline, @FILE, or - for standard input.
fn read_json_arg(arg: &str, what: &str) -> Result<Value, CliError> {
    if arg == "-" {
        let text = input::read_stdin(what)?;
        return writ_core::canonical::parse_strict(&text)
            .map_err(|e| CliError::Usage(format!("{what}: {e}")));
    }
    input::read_json(arg, what)
}

/// A measurement file: `writ env measure` output (`{"measurement", "digest"}`, the digest
/// checked) or the bare measurement.
fn read_environment(path: &Path) -> Result<Measurement, CliError> {
    let text = input::read_file(path, "environment measurement")?;
    let bad = |e: String| CliError::Usage(format!("environment `{}`: {e}", path.display()));
    let value = writ_core::canonical::parse_strict(&text).map_err(|e| bad(e.to_string()))?;
    let (measurement, digest) = match value {
        Value::Object(mut map) if map.contains_key("measurement") => {
            let digest = map.remove("digest");
            let measurement = map.remove("measurement").unwrap_or(Value::Null);
            if let Some(key) = map.keys().next() {
                return Err(bad(format!("unknown field `{key}`")));
            }
            (measurement, digest)
        }
        other => (other, None),
    };
    let measurement: Measurement =
        serde_json::from_value(measurement).map_err(|e| bad(e.to_string()))?;
    if let Some(digest) = digest {
        if digest.as_str() != Some(measurement.digest().to_hex().as_str()) {
            return Err(bad(
                "its `digest` is not the digest of its measurement: measure again".into(),
            ));
        }
    }
    Ok(measurement)
}

/// The request body; the principal is never part of it.
fn body(args: &RequestArgs) -> Result<Value, CliError> {
    let mut body = Map::new();
    body.insert("action".into(), json!(args.action));
    body.insert("resource".into(), json!(args.resource));
    body.insert("args".into(), read_json_arg(&args.args, "arguments")?);
    body.insert("audience".into(), json!(args.audience));
    if let Some(context) = &args.context {
        let context = read_json_arg(context, "context")?;
        if !context.is_object() {
            return Err(CliError::Usage("context: must be a JSON object".into()));
        }
        body.insert("context".into(), context);
    }
    if let Some(path) = &args.environment {
        body.insert("environment".into(), read_environment(path)?.to_value());
    }
    if let Some(path) = &args.executor_key {
        let jwk = input::read_public_key(path)?.to_jwk();
        let jwk = serde_json::to_value(jwk)
            .map_err(|e| CliError::Internal(format!("executor key as JWK: {e}")))?;
        body.insert("executor_key".into(), jwk);
    }
    if let Some(purpose) = &args.purpose {
        body.insert("purpose".into(), json!(purpose));
    }
    if let Some(ticket) = &args.ticket {
        body.insert("ticket".into(), json!(ticket));
    }
    if let Some(path) = &args.parent {
        let parent = input::read_file(path, "parent writ")?;
        body.insert("parent".into(), json!(parent.trim()));
    }
    Ok(Value::Object(body))
}

/// Writes the writ to `path`, readable by its owner only.
pub fn write_writ(path: &Path, writ: &str) -> Result<(), CliError> {
    let err =
        |e: std::io::Error| CliError::Usage(format!("cannot write `{}`: {e}", path.display()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(err)?;
    file.write_all(format!("{writ}\n").as_bytes())
        .map_err(err)?;
    file.sync_all().map_err(err)
}

/// One reason as a person reads it: the policy crate's wording when it knows the code.
pub fn describe(reason: &Value) -> String {
    let code = reason["code"].as_str().unwrap_or("deny");
    match serde_json::from_value::<writ_policy::Reason>(reason.clone()) {
        Ok(r) => format!("{code}: {r}"),
        Err(_) => format!("{code}: {reason}"),
    }
}

fn request(args: &RequestArgs) -> Result<Exit, ClientError> {
    let body = body(args)?;
    let client = args.server.connect(Auth::Token)?;
    let raw: Value = client.post_json("/v1/authorize", &body)?;
    let answer: Answer = serde_json::from_value(raw.clone()).map_err(|e| {
        CliError::Unavailable(format!(
            "the authority's answer is not an authorization decision: {e}"
        ))
    })?;
    match (answer.decision.as_str(), &answer.writ) {
        ("permit", Some(writ)) => {
            if let Some(path) = &args.out {
                write_writ(path, writ)?;
            }
            if args.json {
                println!("{raw}");
            } else if args.out.is_none() {
                println!("{writ}");
            }
            let expires = answer
                .expires_at
                .zip(input::now().ok())
                .map(|(exp, now)| format!(", expires in {} s", exp.saturating_sub(now.as_secs())))
                .unwrap_or_default();
            let saved = args
                .out
                .as_ref()
                .map(|p| format!(", saved to {}", p.display()))
                .unwrap_or_default();
            eprintln!(
                "writ: permit: writ {}{expires}{saved}; decision at log index {}",
                answer.jti.as_deref().unwrap_or("?"),
                answer.log_index
            );
            Ok(Exit::Success)
        }
        ("deny", _) => {
            if args.json {
                println!("{raw}");
            }
            eprintln!("writ: denied (decision at log index {}):", answer.log_index);
            if answer.reasons.is_empty() {
                eprintln!("writ: deny: no reason given");
            }
            for reason in &answer.reasons {
                eprintln!("writ: deny: {}", describe(reason));
            }
            Ok(Exit::Denied)
        }
        ("pending", _) => pending(args, &client, &answer, &raw),
        (decision, _) => Err(CliError::Unavailable(format!(
            "the authority answered `{decision}` without a writ; this writ version takes \
             permit (with a writ), deny or pending"
        ))
        .into()),
    }
}

/// A pending answer: without --wait, the request id and how to go on (exit 77); with
/// --wait, the outcome once the request is settled.
fn pending(
    args: &RequestArgs,
    client: &Client,
    answer: &Answer,
    raw: &Value,
) -> Result<Exit, ClientError> {
    let Some(id) = answer.request_id.as_deref() else {
        return Err(CliError::Unavailable(
            "the authority answered `pending` without a request id".into(),
        )
        .into());
    };
    let id = view::RequestId::parse(id)?;
    let needs = match (answer.approvals_required, &answer.approver_group) {
        (Some(n), Some(group)) => format!("{n} approval(s) from `{group}`"),
        _ => "approvals".to_owned(),
    };
    let expires = answer
        .expires_at
        .zip(input::now().ok())
        .map(|(exp, now)| format!(", expires in {} s", exp.saturating_sub(now.as_secs())))
        .unwrap_or_default();
    eprintln!(
        "writ: pending: request {} needs {needs}{expires} (decision at log index {})",
        id.as_str(),
        answer.log_index
    );
    if !args.wait {
        if args.json {
            println!("{raw}");
        } else {
            println!("{}", id.as_str());
        }
        eprintln!(
            "writ: approvers: `writ approvals list`, then `writ approve {0} --key KEY`; wait \
             for the writ with `writ approvals show {0} --wait` (or ask with --wait)",
            id.as_str()
        );
        return Ok(Exit::Denied);
    }
    eprintln!(
        "writ: waiting up to {} s for the approvals…",
        args.wait_secs
    );
    let mut seen = None;
    let (settled, _) = view::wait(client, &id, Duration::from_secs(args.wait_secs), |v| {
        approvals::report_progress(v, &mut seen)
    })?;
    let json = args.json.then(|| view::decision_json(&settled));
    Ok(view::settle(&settled, args.out.as_deref(), json.as_ref())?)
}
