//! `writ approve` and `writ reject`: fetch the request, recompute its digest from the terms
//! shown, sign the approval object with the approver's own key, send it.

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};
use writ_core::{ApprovalObject, ApprovalVerdict, Sha256Digest, SigningKey};

use super::view::{self, RequestId, RequestView};
use crate::client::{Auth, Client, ClientError, ServerArgs};
use crate::error::CliError;
use crate::exit::Exit;
use crate::input;

/// The approver's private key file, when `--key` is not given.
pub const ENV_APPROVER_KEY: &str = "WRIT_APPROVER_KEY";
/// The authority's `iss`, when `--issuer` is not given.
pub const ENV_ISSUER: &str = "WRIT_ISSUER";

/// The authority's refusals of an approval (docs/approvals.md), all denials.
const APPROVAL_CODES: [&str; 10] = [
    "self_approval",
    "not_an_approver",
    "no_approval_key",
    "forbidden",
    "duplicate_approval",
    "request_mismatch",
    "wrong_authority",
    "approval_expired",
    "invalid_signature",
    "request_closed",
];

/// What `writ approve` and `writ reject` take.
#[derive(Args)]
pub struct DecideArgs {
    /// The request id (`writ approvals list` prints it).
    #[arg(allow_hyphen_values = true)]
    id: String,
    /// The approver's Ed25519 private key (PKCS#8 PEM, mode 0600: `signing-key.pem` from
    /// `writ keys generate`) whose public half is registered as its approval key [env:
    /// WRIT_APPROVER_KEY].
    #[arg(long, value_name = "PEMFILE")]
    key: Option<PathBuf>,
    /// The request digest you were told to approve (e.g. read out by a colleague): refuse
    /// unless the digest recomputed from the terms shown is this one.
    #[arg(long, value_name = "HEX")]
    sha256: Option<String>,
    /// The authority's issuer (`iss`) named in the signed object [env: WRIT_ISSUER; default:
    /// the issuer the request names, else the authority URL, which is `writ serve`'s default
    /// issuer].
    #[arg(long, value_name = "ISS")]
    issuer: Option<String>,
    /// Print the authority's answer as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// `writ approve`.
#[derive(Args)]
#[command(after_help = "\
Example:
  export WRIT_URL=https://writ.example.com WRIT_TOKEN_FILE=~/.config/writ/alice.token
  writ approvals list                                  # read the exact terms first
  writ approve hzs9UxvHnrwNtyovttMs6A --key alice-key/signing-key.pem --sha256 REQUEST_SHA256

The command shows the terms it signs for, recomputes the argument and request digests from
them, and refuses when either differs from what the authority shows (or from --sha256). It
signs {\"type\":\"writ-approval-v1\",\"authority\",\"request_id\",\"request_sha256\",\"expires\"}
with the approver's key; the approval counts for this request and these terms only.

Exit statuses: 0 approved, 77 refused (self_approval, not_an_approver, no_approval_key,
duplicate_approval, request_closed, …, or a digest mismatch), 64 usage error, 69 the
authority is unreachable, 70 internal error.")]
pub struct ApproveArgs {
    #[command(flatten)]
    decide: DecideArgs,
}

/// `writ reject`.
#[derive(Args)]
#[command(after_help = "\
Example:
  writ reject hzs9UxvHnrwNtyovttMs6A --key alice-key/signing-key.pem

One rejection ends the request: its requester's `writ request --wait` exits 77. The
rejection is signed like an approval (type writ-rejection-v1) and logged.

Exit statuses: 0 rejected, 77 refused (not_an_approver, request_closed, …, or a digest
mismatch), 64 usage error, 69 the authority is unreachable, 70 internal error.")]
pub struct RejectArgs {
    #[command(flatten)]
    decide: DecideArgs,
}

pub fn approve(args: ApproveArgs) -> Exit {
    run(&args.decide, ApprovalVerdict::Approve)
}

pub fn reject(args: RejectArgs) -> Exit {
    run(&args.decide, ApprovalVerdict::Reject)
}

fn run(args: &DecideArgs, verdict: ApprovalVerdict) -> Exit {
    match decide(args, verdict) {
        Ok(exit) => exit,
        Err(e) => e.report(args.json),
    }
}

fn denied(code: &str, message: String) -> ClientError {
    ClientError::Refused {
        code: code.to_owned(),
        message,
    }
}

/// The approver's key: `--key`, else `WRIT_APPROVER_KEY`; a file others cannot read.
fn signing_key(args: &DecideArgs) -> Result<SigningKey, CliError> {
    let path = args
        .key
        .clone()
        .or_else(|| {
            std::env::var_os(ENV_APPROVER_KEY)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .ok_or_else(|| {
            CliError::Usage(
                "no approver key: pass --key PEMFILE or set WRIT_APPROVER_KEY (the \
                 signing-key.pem of `writ keys generate`, whose public.jwk was registered with \
                 `writ principals add NAME --role approver --approval-key`)"
                    .into(),
            )
        })?;
    let pem = crate::gate::read_secret_file(&path, "approver key")?;
    SigningKey::from_pkcs8_pem(&pem)
        .map_err(|e| CliError::Usage(format!("approver key `{}`: {e}", path.display())))
}

/// The `iss` to sign for: `--issuer`, else `WRIT_ISSUER`, else what the request names, else
/// the authority's URL. An explicit issuer that differs from the one the request names is
/// refused here rather than by the authority.
fn issuer(args: &DecideArgs, view: &RequestView, client: &Client) -> Result<String, ClientError> {
    let explicit = args
        .issuer
        .clone()
        .or_else(|| std::env::var(ENV_ISSUER).ok().filter(|v| !v.is_empty()));
    match (explicit, &view.authority) {
        (Some(asked), Some(named)) if asked != *named => Err(denied(
            "wrong_authority",
            format!(
                "the authority names itself `{named}`, but the approval would be for `{asked}` \
                 (--issuer or WRIT_ISSUER)"
            ),
        )),
        (Some(asked), _) => Ok(asked),
        (None, Some(named)) => Ok(named.clone()),
        (None, None) => Ok(client.url().to_owned()),
    }
}

/// A refusal by the authority, said in the words of the approvals contract.
fn refusal(e: ClientError, id: &RequestId) -> ClientError {
    let id = id.as_str();
    let (code, message) = match e {
        ClientError::Refused { code, message } => (code, message),
        ClientError::Failed(CliError::Usage(message)) => {
            // 4xx answers other than 401/403 come back as "…: CODE: MESSAGE".
            let said = message
                .strip_prefix("the authority refused the request: ")
                .and_then(|rest| rest.split_once(": "));
            match said {
                Some((code, detail)) if APPROVAL_CODES.contains(&code) => {
                    (code.to_owned(), detail.to_owned())
                }
                _ => return ClientError::Failed(CliError::Usage(message)),
            }
        }
        other => return other,
    };
    let message = match code.as_str() {
        "self_approval" => format!("request {id} is your own: someone else must approve it"),
        "not_an_approver" => format!(
            "you are not in the group whose approval request {id} needs (`writ approvals show \
             {id}` names it)"
        ),
        "no_approval_key" => "no approval key is registered for you: an administrator adds \
             it with `writ principals add NAME --role approver --approval-key public.jwk`"
            .to_owned(),
        "forbidden" => {
            "this token is not an approver's: use your own approver token (--token-file or \
             WRIT_TOKEN_FILE)"
                .to_owned()
        }
        "duplicate_approval" => format!("you have already decided on request {id}"),
        "request_closed" => {
            format!("request {id} is already settled (issued, denied, rejected or expired)")
        }
        "invalid_signature" => format!(
            "the authority does not accept the signature: is --key the private half of your \
             registered approval key? ({message})"
        ),
        _ => message,
    };
    ClientError::Refused { code, message }
}

fn decide(args: &DecideArgs, verdict: ApprovalVerdict) -> Result<Exit, ClientError> {
    let id = RequestId::parse(&args.id)?;
    let expected = args
        .sha256
        .as_deref()
        .map(|hex| {
            Sha256Digest::from_hex(hex.trim()).ok_or_else(|| {
                CliError::Usage(format!(
                    "--sha256 `{hex}` is not a SHA-256 hex digest (64 hex digits)"
                ))
            })
        })
        .transpose()?;
    let key = signing_key(args)?;
    let client = args.server.connect(Auth::Token)?;
    let raw: Value = client.get_json(&id.path()).map_err(|e| refusal(e, &id))?;
    let view = view::parse_view(&raw)?;
    if view.request_id != id.as_str() {
        return Err(CliError::Unavailable(format!(
            "asked for request `{}`, the authority answered with `{}`",
            id.as_str(),
            view.request_id
        ))
        .into());
    }
    let now = input::now()?.as_secs();
    if view.state != "pending" {
        return Err(denied(
            "request_closed",
            format!(
                "request {} is already settled (state `{}`): there is nothing to decide",
                id.as_str(),
                view.state
            ),
        ));
    }
    if view.expires_at <= now {
        return Err(denied(
            "approval_expired",
            format!("request {} expired at {}", id.as_str(), view.expires_at),
        ));
    }
    eprint!("{}", view::render(&view, now));
    let digest = view::check_terms(&view).map_err(|e| {
        denied(
            "request_mismatch",
            format!(
                "not signing: {e}; do not approve this request, and tell the authority's operators"
            ),
        )
    })?;
    if let Some(expected) = expected {
        if expected != digest {
            return Err(denied(
                "request_mismatch",
                format!(
                    "not signing: the request's terms hash to {digest}, not to the --sha256 \
                     {expected} you meant to approve"
                ),
            ));
        }
    }
    let approval = ApprovalObject {
        verdict,
        authority: issuer(args, &view, &client)?,
        request_id: view.request_id.clone(),
        request_sha256: digest,
        expires: view.expires_at,
    };
    let sig = approval.sign(&key);
    let body = json!({
        "approval": {
            "type": verdict.as_str(),
            "authority": approval.authority,
            "request_id": approval.request_id,
            "request_sha256": digest.to_hex(),
            "expires": approval.expires,
        },
        "sig": sig,
    });
    let answer: Value = client
        .post_json(&format!("{}/approvals", id.path()), &body)
        .map_err(|e| refusal(e, &id))?;
    if args.json {
        println!("{answer}");
    }
    let done = match verdict {
        ApprovalVerdict::Approve => "approved",
        ApprovalVerdict::Reject => "rejected",
    };
    let at = answer["log_index"]
        .as_u64()
        .map(|i| format!(" (log index {i})"))
        .unwrap_or_default();
    let after = match view::parse_view(&answer) {
        Ok(after) => match after.state.as_str() {
            "pending" => format!("; {}", view::tally(&after)),
            "permit" => format!(
                "; {}: quorum reached, the writ is issued to `{}`",
                view::tally(&after),
                after.principal
            ),
            state => format!("; the request is now {state}"),
        },
        Err(_) => answer["state"]
            .as_str()
            .map(|s| format!("; the request is now {s}"))
            .unwrap_or_default(),
    };
    eprintln!(
        "writ: {done} request {} with key {}{at}{after}",
        id.as_str(),
        key.kid()
    );
    Ok(Exit::Success)
}
