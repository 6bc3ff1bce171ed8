//! A pending request as the authority shows it (`GET /v1/requests[/{id}]`), the check of its
//! digests against the terms it shows, how a person reads it, and how a settled one ends a
//! command (the writ on permit, exit 77 otherwise).

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};
use writ_core::{canonical, KeyId, RequestTerms, Sha256Digest};

use crate::client::{Client, ClientError};
use crate::error::CliError;
use crate::exit::Exit;
use crate::input;

/// The longest single long poll asked for: under the client's 30 s limit on a whole call.
const POLL_SECS: u64 = 25;

/// A request id as typed: letters, digits, `-`, `_` and `.` only, so it is one path segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// Checks `text`.
    pub fn parse(text: &str) -> Result<Self, CliError> {
        let text = text.trim();
        let ok = !text.is_empty()
            && text.len() <= 128
            && text != "."
            && text != ".."
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(RequestId(text.to_owned()))
        } else {
            Err(CliError::Usage(format!(
                "`{text}` is not a request id (the id `writ request` or `writ approvals list` \
                 prints)"
            )))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `/v1/requests/{id}`.
    pub fn path(&self) -> String {
        format!("/v1/requests/{}", self.0)
    }
}

/// One approval already given, as shown.
#[derive(Clone, Debug, Deserialize)]
pub struct Given {
    pub approver: String,
    #[serde(default)]
    pub at: Option<u64>,
}

/// A request as returned by `GET /v1/requests/{id}` (and each item of `GET /v1/requests`).
#[derive(Clone, Debug, Deserialize)]
pub struct RequestView {
    pub request_id: String,
    pub state: String,
    #[serde(default)]
    pub principal: String,
    pub action: String,
    pub resource: String,
    pub args: Value,
    pub args_sha256: String,
    pub audience: String,
    /// `null`, the `jkt`, or `{"jkt": …}`.
    #[serde(default)]
    pub cnf: Value,
    /// `null` or the environment digest (hex).
    #[serde(default)]
    pub env: Value,
    pub uses: u32,
    /// How long the writ lives once issued.
    #[serde(default)]
    pub lifetime_secs: Option<u64>,
    #[serde(default)]
    pub purpose: Option<String>,
    #[serde(default)]
    pub ticket: Option<String>,
    pub request_sha256: String,
    pub approvals_required: u32,
    pub approver_group: String,
    #[serde(default)]
    pub approvals: Vec<Given>,
    #[serde(default)]
    pub created_at: Option<u64>,
    pub expires_at: u64,
    #[serde(default)]
    pub policy_digest: Option<String>,
    #[serde(default)]
    pub policy_ids: Vec<String>,
    /// The authority's `iss`, when the authority names it.
    #[serde(default, alias = "issuer")]
    pub authority: Option<String>,
    // Settled requests.
    #[serde(default)]
    pub writ: Option<String>,
    #[serde(default)]
    pub jti: Option<String>,
    #[serde(default)]
    pub writ_expires_at: Option<u64>,
    #[serde(default)]
    pub log_index: Option<u64>,
    #[serde(default)]
    pub reasons: Vec<Value>,
    #[serde(default)]
    pub rejected_by: Option<String>,
}

/// `GET /v1/requests`.
#[derive(Deserialize)]
pub struct RequestList {
    pub requests: Vec<Value>,
}

/// Reads one request out of the authority's JSON.
pub fn parse_view(raw: &Value) -> Result<RequestView, CliError> {
    serde_json::from_value(raw.clone()).map_err(|e| {
        CliError::Unavailable(format!(
            "the authority's answer is not a request as docs/approvals.md describes it: {e}"
        ))
    })
}

/// The approver's `cnf`: the `jkt`, whether shown bare or as `{"jkt": …}`.
fn cnf_of(view: &RequestView) -> Result<Option<KeyId>, String> {
    match &view.cnf {
        Value::Null => Ok(None),
        Value::String(jkt) => Ok(Some(KeyId::new(jkt.clone()))),
        Value::Object(map) => match map.get("jkt") {
            Some(Value::String(jkt)) => Ok(Some(KeyId::new(jkt.clone()))),
            _ => Err(format!("`cnf` {} holds no `jkt`", view.cnf)),
        },
        other => Err(format!("`cnf` {other} is neither null nor a key id")),
    }
}

fn env_of(view: &RequestView) -> Result<Option<Sha256Digest>, String> {
    match &view.env {
        Value::Null => Ok(None),
        Value::String(hex) => Sha256Digest::from_hex(hex)
            .map(Some)
            .ok_or_else(|| format!("`env` `{hex}` is not a SHA-256 hex digest")),
        other => Err(format!("`env` {other} is neither null nor a digest")),
    }
}

fn hex_digest(text: &str, what: &str) -> Result<Sha256Digest, String> {
    Sha256Digest::from_hex(text)
        .ok_or_else(|| format!("`{what}` `{text}` is not a SHA-256 hex digest"))
}

/// Why the terms shown do not hash to the digests shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The arguments and `args_sha256`.
    Args(String),
    /// The terms and `request_sha256`.
    Request(String),
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Args(m) | Mismatch::Request(m) => f.write_str(m),
        }
    }
}

/// Recomputes the argument digest and the request digest from the terms shown. `Ok` is the
/// request digest when both equal what the authority shows; `Err` says what differs.
pub fn check_terms(view: &RequestView) -> Result<Sha256Digest, Mismatch> {
    let args_sha256 = canonical::args_digest(&view.args).map_err(|e| {
        Mismatch::Args(format!(
            "the arguments shown cannot be digested exactly: {e}"
        ))
    })?;
    let shown_args = hex_digest(&view.args_sha256, "args_sha256").map_err(Mismatch::Args)?;
    if shown_args != args_sha256 {
        return Err(Mismatch::Args(format!(
            "the arguments shown hash to {args_sha256}, not to the args_sha256 {shown_args} \
             the authority shows"
        )));
    }
    let cnf = cnf_of(view).map_err(Mismatch::Request)?;
    let env = env_of(view).map_err(Mismatch::Request)?;
    let digest = RequestTerms {
        action: &view.action,
        resource: &view.resource,
        args_sha256: &args_sha256,
        aud: &view.audience,
        cnf: cnf.as_ref(),
        env: env.as_ref(),
        uses: view.uses,
    }
    .digest();
    let shown = hex_digest(&view.request_sha256, "request_sha256").map_err(Mismatch::Request)?;
    if shown != digest {
        return Err(Mismatch::Request(format!(
            "the terms shown hash to {digest}, not to the request_sha256 {shown} the authority \
             shows"
        )));
    }
    Ok(digest)
}

/// "in 14m 2s", "2m 3s ago".
fn relative(at: u64, now: u64) -> String {
    let span = |secs: u64| {
        if secs >= 3600 {
            format!("{}h {}m", secs / 3600, secs % 3600 / 60)
        } else if secs >= 60 {
            format!("{}m {}s", secs / 60, secs % 60)
        } else {
            format!("{secs}s")
        }
    };
    if at == now {
        "just now".to_owned()
    } else if at > now {
        format!("in {}", span(at - now))
    } else {
        format!("{} ago", span(now - at))
    }
}

/// The approvals given so far, as `k/N from GROUP (alice, bob)`.
pub fn tally(view: &RequestView) -> String {
    let names: Vec<&str> = view.approvals.iter().map(|a| a.approver.as_str()).collect();
    let by = if names.is_empty() {
        String::new()
    } else {
        format!(": {}", names.join(", "))
    };
    format!(
        "{}/{} approvals from `{}`{by}",
        view.approvals.len(),
        view.approvals_required,
        view.approver_group
    )
}

/// The request as a block of lines a person reads before approving.
pub fn render(view: &RequestView, now: u64) -> String {
    let check = check_terms(view);
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        out.push_str(&format!("  {label:<15} {value}\n"));
    };
    let cnf = match cnf_of(view) {
        Ok(Some(jkt)) => format!("{jkt} (only the executor holding this key)"),
        Ok(None) => "none (not bound to an executor key)".to_owned(),
        Err(e) => e,
    };
    let env = match env_of(view) {
        Ok(Some(d)) => d.to_hex(),
        Ok(None) => "none (not bound to an environment)".to_owned(),
        Err(e) => e,
    };
    let expires = if view.state == "pending" {
        format!("{} ({})", view.expires_at, relative(view.expires_at, now))
    } else {
        view.expires_at.to_string()
    };
    line("state", view.state.clone());
    line("requester", view.principal.clone());
    line("action", view.action.clone());
    line("resource", view.resource.clone());
    line("args", canonical::to_canonical_string(&view.args));
    let args_note = match &check {
        Err(Mismatch::Args(_)) => " (MISMATCH)",
        _ => " (recomputed: matches)",
    };
    line("args_sha256", format!("{}{args_note}", view.args_sha256));
    line("audience", view.audience.clone());
    line("cnf", cnf);
    line("env", env);
    line("uses", view.uses.to_string());
    if let Some(secs) = view.lifetime_secs {
        line("lifetime", format!("{secs} s once issued"));
    }
    if let Some(purpose) = &view.purpose {
        line("purpose", purpose.clone());
    }
    if let Some(ticket) = &view.ticket {
        line("ticket", ticket.clone());
    }
    let digest_note = match &check {
        Ok(_) => " (recomputed: matches)".to_owned(),
        Err(e) => format!(" (MISMATCH: {e}; do not approve)"),
    };
    line(
        "request_sha256",
        format!("{}{digest_note}", view.request_sha256),
    );
    line("approvals", tally(view));
    for given in &view.approvals {
        if let Some(at) = given.at {
            line(
                "",
                format!("{} approved {}", given.approver, relative(at, now)),
            );
        }
    }
    if let Some(created) = view.created_at {
        line("created", format!("{created} ({})", relative(created, now)));
    }
    line("expires", expires);
    if !view.policy_ids.is_empty() || view.policy_digest.is_some() {
        let digest = view
            .policy_digest
            .as_deref()
            .map(|d| format!(" (policy set {d})"))
            .unwrap_or_default();
        line("policy", format!("{}{digest}", view.policy_ids.join(", ")));
    }
    if let Some(by) = &view.rejected_by {
        line("rejected by", by.clone());
    }
    if let Some(jti) = &view.jti {
        line("writ", jti.clone());
    }
    format!("request {}\n{out}", view.request_id)
}

/// Long-polls `GET /v1/requests/{id}?wait=…` until the request is settled or `within` has
/// passed; returns the last answer (its raw JSON too). `progress` sees each answer.
pub fn wait(
    client: &Client,
    id: &RequestId,
    within: Duration,
    mut progress: impl FnMut(&RequestView),
) -> Result<(RequestView, Value), ClientError> {
    let deadline = Instant::now() + within;
    loop {
        // Whole seconds, rounded up: a wait with 0.9 s left still waits.
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_millis()
            .div_ceil(1000);
        let left = u64::try_from(left).unwrap_or(u64::MAX);
        let path = format!("{}?wait={}", id.path(), left.clamp(0, POLL_SECS));
        let raw: Value = client.get_json(&path)?;
        let view = parse_view(&raw)?;
        if view.request_id != id.as_str() {
            return Err(CliError::Unavailable(format!(
                "asked for request `{}`, the authority answered with `{}`",
                id.as_str(),
                view.request_id
            ))
            .into());
        }
        progress(&view);
        if view.state != "pending" || left == 0 {
            return Ok((view, raw));
        }
    }
}

/// The `--json` line of a waited-for request, shaped like `POST /v1/authorize`'s answer.
pub fn decision_json(view: &RequestView) -> Value {
    let approvals: Vec<&str> = view.approvals.iter().map(|a| a.approver.as_str()).collect();
    match view.state.as_str() {
        "permit" => json!({
            "decision": "permit", "request_id": view.request_id, "writ": view.writ,
            "jti": view.jti, "expires_at": view.writ_expires_at, "log_index": view.log_index,
            "approvals": approvals,
        }),
        "pending" => json!({
            "decision": "pending", "request_id": view.request_id,
            "request_sha256": view.request_sha256, "expires_at": view.expires_at,
            "approvals": approvals,
        }),
        state => json!({
            "decision": "deny", "request_id": view.request_id, "state": state,
            "reasons": view.reasons, "rejected_by": view.rejected_by,
            "log_index": view.log_index,
        }),
    }
}

/// Ends a command on a request's outcome: on permit the writ goes to `out` (mode 0600) or
/// standard output (exit 0); a denial, rejection, expiry or a request still pending is exit
/// 77 with the reason on standard error. `json` is printed on standard output instead of the
/// writ when given.
pub fn settle(
    view: &RequestView,
    out: Option<&Path>,
    json: Option<&Value>,
) -> Result<Exit, CliError> {
    if let Some(json) = json {
        println!("{json}");
    }
    let id = &view.request_id;
    match view.state.as_str() {
        "permit" => {
            let Some(writ) = &view.writ else {
                eprintln!(
                    "writ: request {id} was approved ({}) and its writ issued to `{}`",
                    tally(view),
                    view.principal
                );
                return Ok(Exit::Success);
            };
            if let Some(path) = out {
                crate::command::request::write_writ(path, writ)?;
            } else if json.is_none() {
                println!("{writ}");
            }
            let expires = view
                .writ_expires_at
                .zip(input::now().ok())
                .map(|(exp, now)| format!(", expires in {} s", exp.saturating_sub(now.as_secs())))
                .unwrap_or_default();
            let saved = out
                .map(|p| format!(", saved to {}", p.display()))
                .unwrap_or_default();
            let at = view
                .log_index
                .map(|i| format!("; decision at log index {i}"))
                .unwrap_or_default();
            eprintln!(
                "writ: permit: writ {}{expires}{saved}; request {id} approved ({}){at}",
                view.jti.as_deref().unwrap_or("?"),
                tally(view)
            );
            Ok(Exit::Success)
        }
        "deny" => {
            let at = view
                .log_index
                .map(|i| format!(" (decision at log index {i})"))
                .unwrap_or_default();
            eprintln!(
                "writ: denied: request {id} reached its approvals, but the policy in force no \
                 longer permits it{at}:"
            );
            if view.reasons.is_empty() {
                eprintln!("writ: deny: no reason given");
            }
            for reason in &view.reasons {
                eprintln!("writ: deny: {}", crate::command::request::describe(reason));
            }
            Ok(Exit::Denied)
        }
        "rejected" => {
            eprintln!(
                "writ: denied: request {id} was rejected by {}",
                view.rejected_by.as_deref().unwrap_or("an approver")
            );
            Ok(Exit::Denied)
        }
        "expired" => {
            eprintln!(
                "writ: denied: request {id} expired with {}; ask again",
                tally(view)
            );
            Ok(Exit::Denied)
        }
        "pending" => {
            eprintln!(
                "writ: request {id} still awaits approvals ({}); wait again with `writ \
                 approvals show {id} --wait`",
                tally(view)
            );
            Ok(Exit::Denied)
        }
        other => Err(CliError::Unavailable(format!(
            "request {id} is in state `{other}`, which this writ version does not know"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(args: Value) -> RequestView {
        let args_sha256 = canonical::args_digest(&args).unwrap();
        let digest = RequestTerms {
            action: "pay",
            resource: "payee:acme",
            args_sha256: &args_sha256,
            aud: "payments-gate",
            cnf: None,
            env: None,
            uses: 1,
        }
        .digest();
        parse_view(&json!({
            "request_id": "r1", "state": "pending", "principal": "finance-bot",
            "action": "pay", "resource": "payee:acme", "args": args,
            "args_sha256": args_sha256.to_hex(), "audience": "payments-gate", "cnf": null,
            "env": null, "uses": 1, "request_sha256": digest.to_hex(),
            "approvals_required": 2, "approver_group": "finance",
            "approvals": [{"approver": "alice", "at": 1}], "created_at": 0,
            "expires_at": 900, "policy_digest": "p", "policy_ids": ["approve-large-payments"]
        }))
        .unwrap()
    }

    #[test]
    fn the_terms_shown_must_hash_to_the_digests_shown() {
        let v = view(json!({"amount": 25000}));
        assert!(check_terms(&v).is_ok());

        let mut other_args = v.clone();
        other_args.args = json!({"amount": 25001});
        assert!(matches!(check_terms(&other_args), Err(Mismatch::Args(_))));

        let mut other_uses = v.clone();
        other_uses.uses = 2;
        assert!(matches!(
            check_terms(&other_uses),
            Err(Mismatch::Request(_))
        ));

        let mut bound = v.clone();
        bound.cnf = json!({"jkt": "k"});
        assert!(check_terms(&bound).is_err());

        let mut bad_env = v.clone();
        bad_env.env = json!("zz");
        assert!(check_terms(&bad_env).is_err());

        let mut inexact = v;
        inexact.args = json!({"amount": 1e300});
        assert!(check_terms(&inexact).is_err());
    }

    #[test]
    fn the_block_shows_the_terms_and_the_check() {
        let v = view(json!({"amount": 25000, "currency": "EUR"}));
        let text = render(&v, 300);
        assert!(text.starts_with("request r1\n"), "{text}");
        assert!(
            text.contains(r#"{"amount":25000,"currency":"EUR"}"#),
            "{text}"
        );
        assert!(
            text.contains("1/2 approvals from `finance`: alice"),
            "{text}"
        );
        assert!(text.contains("in 10m 0s"), "{text}");
        assert!(!text.contains("MISMATCH"), "{text}");
        let mut forged = v;
        forged.resource = "payee:evil".into();
        assert!(render(&forged, 0).contains("MISMATCH"));
    }

    #[test]
    fn request_ids_are_one_path_segment() {
        assert!(RequestId::parse("Ab-_9.x").is_ok());
        for bad in ["", "..", "a/b", "a?wait=1", "a b", "é"] {
            assert!(RequestId::parse(bad).is_err(), "{bad}");
        }
    }
}
