//! `writ approvals list|show`, `writ approve`, `writ reject`: M-of-N human sign-off on pending
//! requests at a running authority (docs/approvals.md).
//!
//! What an approver sees is checked before it is shown as approvable: the arguments must hash
//! to the argument digest shown, and the terms to the request digest shown (recomputed with
//! [`writ_core::RequestTerms`]). `writ approve` signs only a digest it recomputed.

mod decide;
pub mod view;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;

pub use decide::{approve, reject, ApproveArgs, RejectArgs};
use view::{RequestId, RequestList};

use crate::client::{Auth, ClientError, ServerArgs};
use crate::error::CliError;
use crate::exit::Exit;
use crate::input;

/// How long `--wait` waits by default: the authority's default request lifetime.
pub const DEFAULT_WAIT_SECS: u64 = 900;

/// `writ approvals`.
#[derive(Subcommand)]
pub enum ApprovalsCommand {
    /// Pending requests, each with the exact terms to approve and their digests (approvers
    /// and admins).
    ///
    /// For each request: its id, the requester, the action, resource and exact arguments
    /// (RFC 8785 canonical JSON), the argument digest, the audience, `cnf`, `env`, `uses`,
    /// the request digest, the approvals so far out of those required, and when it expires.
    /// Both digests are recomputed here from the terms shown; a request whose digests do not
    /// match is marked MISMATCH and `writ approve` refuses it.
    List(ListArgs),
    /// One request; with --wait, until it is settled (its requester then gets the writ).
    ///
    /// Without --wait: the request as `list` shows it (exit 0). With --wait: waits (long
    /// polls) until it is approved, rejected, denied or expired, then ends like `writ
    /// request`: the writ on standard output or in --out for its requester (exit 0), exit 77
    /// with the reason otherwise.
    Show(ShowArgs),
}

/// `writ approvals list`.
#[derive(Args)]
#[command(after_help = "\
Example:
  export WRIT_URL=https://writ.example.com WRIT_TOKEN_FILE=~/.config/writ/alice.token
  writ approvals list
  writ approve hzs9UxvHnrwNtyovttMs6A --key alice-key/signing-key.pem --sha256 REQUEST_SHA256

Exit statuses: 0 listed, 77 the token was refused (an approver or admin token is needed),
64 usage error, 69 the authority is unreachable, 70 internal error.")]
pub struct ListArgs {
    /// Print the authority's answer as JSON (`{\"requests\":[…]}`).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// `writ approvals show`.
#[derive(Args)]
#[command(after_help = "\
Examples:
  # What is asked, and the approvals so far:
  writ approvals show hzs9UxvHnrwNtyovttMs6A
  # As the requester: wait for the writ.
  writ approvals show hzs9UxvHnrwNtyovttMs6A --wait --out writ.jws

Exit statuses: 0 shown (with --wait: permit), 77 denied, rejected, expired or still pending
after --wait-secs (or the token was refused), 64 usage error, 69 the authority is
unreachable, 70 internal error.")]
pub struct ShowArgs {
    /// The request id (`writ request` and `writ approvals list` print it).
    #[arg(allow_hyphen_values = true)]
    id: String,
    /// Wait until the request is settled.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds (exit 77, still pending).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_WAIT_SECS, requires = "wait")]
    wait_secs: u64,
    /// For the requester: write the writ to FILE (mode 0600) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Print the authority's answer (the request) as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

pub fn run(cmd: ApprovalsCommand) -> Exit {
    let (result, json) = match &cmd {
        ApprovalsCommand::List(args) => (list(args), args.json),
        ApprovalsCommand::Show(args) => (show(args), args.json),
    };
    match result {
        Ok(exit) => exit,
        Err(e) => e.report(json),
    }
}

fn now_secs() -> u64 {
    input::now().map(|t| t.as_secs()).unwrap_or(0)
}

fn list(args: &ListArgs) -> Result<Exit, ClientError> {
    let client = args.server.connect(Auth::Token)?;
    let raw: Value = client.get_json("/v1/requests")?;
    let answer: RequestList = serde_json::from_value(raw.clone()).map_err(|e| {
        CliError::Unavailable(format!(
            "the authority's answer is not a list of requests: {e}"
        ))
    })?;
    let views = answer
        .requests
        .iter()
        .map(view::parse_view)
        .collect::<Result<Vec<_>, _>>()?;
    if args.json {
        println!("{raw}");
    } else {
        let now = now_secs();
        let blocks: Vec<String> = views.iter().map(|v| view::render(v, now)).collect();
        print!("{}", blocks.join("\n"));
    }
    if views.is_empty() {
        eprintln!("writ: no pending requests at {}", client.url());
        return Ok(Exit::Success);
    }
    let mismatched: Vec<&str> = views
        .iter()
        .filter(|v| view::check_terms(v).is_err())
        .map(|v| v.request_id.as_str())
        .collect();
    if !mismatched.is_empty() {
        eprintln!(
            "writ: warning: the digests shown for {} do not match their terms: do not approve \
             them, and tell the authority's operators",
            mismatched.join(", ")
        );
    }
    eprintln!(
        "writ: {} pending; approve one with `writ approve ID --key KEY --sha256 REQUEST_SHA256`, \
         reject with `writ reject ID --key KEY`",
        views.len()
    );
    Ok(Exit::Success)
}

fn show(args: &ShowArgs) -> Result<Exit, ClientError> {
    let id = RequestId::parse(&args.id)?;
    let client = args.server.connect(Auth::Token)?;
    if !args.wait {
        let raw: Value = client.get_json(&id.path())?;
        let view = view::parse_view(&raw)?;
        if let (Some(path), Some(writ)) = (&args.out, &view.writ) {
            crate::command::request::write_writ(path, writ)?;
            eprintln!("writ: the writ is saved to {}", path.display());
        }
        if args.json {
            println!("{raw}");
        } else {
            print!("{}", view::render(&view, now_secs()));
            if let (None, Some(writ)) = (&args.out, &view.writ) {
                println!("  {:<15} {writ}", "compact writ");
            }
        }
        return Ok(Exit::Success);
    }
    let mut seen = None;
    let (view, raw) = view::wait(&client, &id, Duration::from_secs(args.wait_secs), |v| {
        report_progress(v, &mut seen)
    })?;
    Ok(view::settle(
        &view,
        args.out.as_deref(),
        args.json.then_some(&raw),
    )?)
}

/// Says on standard error when the approvals given change while waiting.
pub fn report_progress(view: &view::RequestView, seen: &mut Option<usize>) {
    if view.state == "pending" && *seen != Some(view.approvals.len()) {
        if seen.is_some() || !view.approvals.is_empty() {
            eprintln!("writ: request {}: {}", view.request_id, view::tally(view));
        }
        *seen = Some(view.approvals.len());
    }
}
