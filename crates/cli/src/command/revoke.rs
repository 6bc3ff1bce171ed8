//! `writ revoke`: an administrator revokes a writ, a principal, a signing key or a policy
//! set at a running authority.

use clap::{ArgGroup, Args};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::client::{Auth, ClientError, ServerArgs};
use crate::exit::Exit;

/// `writ revoke` (its description is on the `Revoke` command in main.rs).
#[derive(Args)]
#[command(group(ArgGroup::new("target").required(true).args(["writ", "principal", "key", "policy"])))]
#[command(after_help = "\
Examples:
  export WRIT_URL=https://writ.example.com WRIT_TOKEN_FILE=/var/lib/writ/admin.token
  writ revoke --writ 3q2-7wEjRZ6Vb1uYtQ6Yxg --reason 'agent went off script'
  writ revoke --principal build-agent --reason 'token leaked in CI logs'
  writ revoke --policy 5f1c…e9 --reason 'superseded by the reviewed set'

Exit statuses: 0 revoked, 77 the token was refused (an admin token is needed),
64 usage error, 69 the authority is unreachable, 70 internal error.")]
pub struct RevokeArgs {
    /// A writ id (`jti`): the writ and every writ delegated from it.
    #[arg(long, value_name = "JTI", allow_hyphen_values = true)]
    writ: Option<String>,
    /// A principal: every writ it holds.
    #[arg(long, value_name = "NAME")]
    principal: Option<String>,
    /// A signing key id (`kid`): every writ it signed.
    #[arg(long, value_name = "KID")]
    key: Option<String>,
    /// A policy set digest (`pol.digest`): every writ it issued.
    #[arg(long, value_name = "DIGEST")]
    policy: Option<String>,
    /// Why, for the log.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// Print the authority's answer as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Deserialize)]
struct Answer {
    log_index: u64,
}

pub fn run(args: RevokeArgs) -> Exit {
    match revoke(&args) {
        Ok(exit) => exit,
        Err(e) => e.report(args.json),
    }
}

/// What is revoked: the body's field and the target.
fn target(args: &RevokeArgs) -> Option<(&'static str, &str)> {
    [
        ("writ", &args.writ),
        ("principal", &args.principal),
        ("key", &args.key),
        ("policy", &args.policy),
    ]
    .into_iter()
    .find_map(|(kind, value)| value.as_deref().map(|v| (kind, v)))
}

fn revoke(args: &RevokeArgs) -> Result<Exit, ClientError> {
    let Some((kind, value)) = target(args) else {
        return Err(crate::error::CliError::Usage(
            "name what to revoke: --writ, --principal, --key or --policy".into(),
        )
        .into());
    };
    let mut body = Map::new();
    body.insert(kind.into(), json!(value));
    if let Some(reason) = &args.reason {
        body.insert("reason".into(), json!(reason));
    }
    let client = args.server.connect(Auth::Token)?;
    let raw: Value = client.post_json("/v1/revocations", &Value::Object(body))?;
    let answer: Answer = serde_json::from_value(raw.clone()).map_err(|e| {
        crate::error::CliError::Unavailable(format!(
            "the authority's answer is not a revocation receipt: {e}"
        ))
    })?;
    if args.json {
        println!("{raw}");
    } else {
        println!("revoked {kind} `{value}` (log index {})", answer.log_index);
    }
    Ok(Exit::Success)
}
