//! `writ mcp-gateway`: an MCP server behind a gate, over stdio or Streamable HTTP.
//!
//! [`writ_gate::McpGate`] decides what each message becomes; the transports only move bytes,
//! ask the [`Authorizer`] (through `McpGate`) and send receipts off the message path:
//!
//! - [`stdio`]: the gateway starts the server as its child and relays newline-delimited
//!   JSON-RPC between its own stdin/stdout (the client) and the child's.
//! - [`http`]: the gateway is a Streamable HTTP endpoint in front of an upstream Streamable
//!   HTTP server (`--listen`, `--upstream`).
//!
//! This module holds what both share: arguments and settings, the authorizer, the tool filter
//! of `--hide-denied-tools`, and receipts in flight.

mod http;
mod stdio;

use std::collections::HashSet;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;
use writ_core::{Denial, DenyCode};
use writ_gate::{Action, Authorizer, CallReport, McpGate, Outcome, Permit, ReportError};

use crate::error::CliError;
use crate::exit::Exit;
use crate::gate;

/// How long receipts still being sent may hold up the gateway's exit.
const REPORT_GRACE: Duration = Duration::from_secs(10);

/// `writ mcp-gateway` (its description is on the `McpGateway` command in main.rs).
#[derive(Args)]
#[command(after_help = "\
Example (an MCP client's server entry, stdio):
  writ mcp-gateway --name fs --token-file ~/.config/writ/agent.token -- \\
      npx @modelcontextprotocol/server-filesystem /srv/data

Example (Streamable HTTP: clients connect to http://127.0.0.1:8931/mcp):
  writ mcp-gateway --name docs --token-file ~/.config/writ/agent.token \\
      --listen 127.0.0.1:8931 --upstream http://127.0.0.1:3001/mcp

Every `tools/call` is authorized as action `tools/call` on resource `mcp:<NAME>/<tool>` with
the call's `arguments`, by the gate configured in $XDG_CONFIG_HOME/writ/gate.toml (`writ gate
init`), asking for writs as the agent whose token is given. A denied call never reaches the
server: the client gets a tool error `writ denied: CODE: reason`.

Streamable HTTP: the gateway speaks plain HTTP on both sides, with no TLS and no client
authentication of its own, so it listens on loopback addresses only unless
--allow-non-loopback is given (then put it behind a TLS proxy that authenticates clients).
Requests of up to 16 MiB are accepted; the client's Mcp-Session-Id, MCP-Protocol-Version,
Accept, Last-Event-ID and Authorization headers are passed upstream.

--hide-denied-tools: each tool in a `tools/list` answer is kept only when the authority's
preview (POST /v1/authorize/preview: policy's decision, nothing issued or logged) would not
deny calling it with empty arguments, and once a call of it was denied by policy. A tool whose
policy depends on its arguments may so be hidden although some calls would pass; when the
preview cannot be had, the tool is listed. Every call is authorized on its own either way.

Exit statuses: 0 the client closed the session (or the server exited cleanly; over HTTP: the
gateway was interrupted), 64 usage error, 69 the server exited with a failure, the listen
address is unusable or the authority settings are unusable, 70 internal error.")]
pub struct McpGatewayArgs {
    /// The server's name in resources, `mcp:<SERVER>/<tool>` [config: name].
    #[arg(long, value_name = "SERVER")]
    name: Option<String>,
    /// The gateway's config file (TOML: `name`, `hide_denied_tools`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Trim `tools/list` answers to tools the agent may call (see below for the limits)
    /// [config: hide_denied_tools].
    #[arg(long)]
    hide_denied_tools: bool,
    /// The agent's bearer token file: writs are requested as this principal [env:
    /// WRIT_TOKEN_FILE, or the token itself in WRIT_TOKEN].
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Serve MCP Streamable HTTP on this address (plain HTTP, no TLS; port 0 picks one, and
    /// the address is printed) instead of stdio; needs --upstream.
    #[arg(
        long,
        value_name = "ADDR",
        requires = "upstream",
        conflicts_with = "command"
    )]
    listen: Option<SocketAddr>,
    /// The upstream MCP server's Streamable HTTP endpoint, `http://HOST:PORT/PATH`.
    #[arg(long, value_name = "URL", requires = "listen")]
    upstream: Option<String>,
    /// Allow --listen on an address other than loopback (there is no TLS here).
    #[arg(long, requires = "listen")]
    allow_non_loopback: bool,
    /// The MCP server's command and its arguments, after `--` (stdio).
    #[arg(
        last = true,
        required_unless_present = "listen",
        value_name = "SERVER_CMD"
    )]
    command: Vec<OsString>,
}

/// The gateway's config file. Unknown keys are refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewayConfig {
    name: Option<String>,
    #[serde(default)]
    hide_denied_tools: bool,
}

/// The validated settings.
struct Settings {
    name: String,
    hide_denied_tools: bool,
    transport: Transport,
}

/// Where the client and the server are.
enum Transport {
    /// Start this server command; the client is on our stdin and stdout.
    Stdio {
        program: OsString,
        args: Vec<OsString>,
    },
    /// Serve Streamable HTTP in front of an upstream Streamable HTTP server.
    Http(http::HttpSettings),
}

pub fn run(args: McpGatewayArgs) -> Exit {
    match gateway(&args) {
        Ok(exit) => exit,
        Err(e) => e.report(false),
    }
}

/// Whether `name` may name a server in `mcp:<name>/<tool>`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn settings(args: &McpGatewayArgs) -> Result<Settings, CliError> {
    let config = match &args.config {
        Some(path) => read_config(path)?,
        None => GatewayConfig::default(),
    };
    let name = args.name.clone().or(config.name).ok_or_else(|| {
        CliError::Usage("no server name: pass --name SERVER or set `name` in --config".into())
    })?;
    if !valid_name(&name) {
        return Err(CliError::Usage(format!(
            "server name `{name}`: use letters, digits, `-`, `_` and `.` only"
        )));
    }
    let transport = match (args.listen, &args.upstream) {
        (Some(listen), Some(upstream)) => Transport::Http(http::HttpSettings::new(
            listen,
            upstream,
            args.allow_non_loopback,
        )?),
        (Some(_), None) | (None, Some(_)) => {
            return Err(CliError::Usage(
                "--listen and --upstream go together".into(),
            ))
        }
        (None, None) => {
            let mut command = args.command.iter().cloned();
            let program = command
                .next()
                .ok_or_else(|| CliError::Usage("no server command after `--`".into()))?;
            Transport::Stdio {
                program,
                args: command.collect(),
            }
        }
    };
    Ok(Settings {
        name,
        hide_denied_tools: args.hide_denied_tools || config.hide_denied_tools,
        transport,
    })
}

fn read_config(path: &Path) -> Result<GatewayConfig, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::Usage(format!(
            "cannot read gateway config `{}`: {e}",
            path.display()
        ))
    })?;
    toml::from_str(&text)
        .map_err(|e| CliError::Usage(format!("gateway config `{}`: {e}", path.display())))
}

/// The authorizer every `tools/call` goes through: the online gate of this user's gate
/// config, requesting writs as the agent. The one place that decides how the gateway
/// authorizes.
fn authorizer(args: &McpGatewayArgs) -> Result<SharedAuthorizer, CliError> {
    let config = gate::load_config()?;
    let token = gate::agent_token(None, args.token_file.as_deref())?;
    Ok(Arc::new(gate::OnlineGate::new(&config, token)?))
}

/// The authorizer, shared by the threads and tasks of a transport.
type SharedAuthorizer = Arc<dyn Authorizer + Send + Sync>;

/// Makes the [`McpGate`] for one stretch of conversation: the whole session over stdio, one
/// POST over Streamable HTTP (whose answers come back on that POST's response).
type GateFactory = Arc<dyn Fn() -> McpGate + Send + Sync>;

/// Whether policy could permit calling `tool` of `server`: asked with empty arguments, so a
/// tool whose policy depends on its arguments may be hidden although some calls would pass.
/// When the answer cannot be had, the tool is listed (every call is authorized anyway).
fn could_be_permitted(
    authorizer: &(dyn Authorizer + Send + Sync),
    server: &str,
    tool: &str,
) -> bool {
    let action = Action {
        action: "tools/call".into(),
        resource: format!("mcp:{server}/{tool}"),
        args: serde_json::json!({}),
    };
    let ask = || authorizer.preview(&action);
    // The filter runs inside the relay, which may be an async task: block in place there.
    let answer = match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(ask)
        }
        _ => ask(),
    };
    answer != Some(false)
}

/// Remembers the tools policy denied, for `--hide-denied-tools`.
struct Remembering {
    inner: SharedAuthorizer,
    prefix: String,
    denied: Arc<Mutex<HashSet<String>>>,
}

impl Authorizer for Remembering {
    fn authorize(&self, action: &Action) -> Result<Permit, Denial> {
        let answer = self.inner.authorize(action);
        if let Err(denial) = &answer {
            // Only a policy decision says something about the tool; an outage does not.
            if denial.code == DenyCode::MissingAuthorization {
                if let Some(tool) = action.resource.strip_prefix(&self.prefix) {
                    lock(&self.denied).insert(tool.to_owned());
                }
            }
        }
        answer
    }

    fn report(&self, permit: &Permit, outcome: &Outcome) -> Result<(), ReportError> {
        self.inner.report(permit, outcome)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Receipts being sent, so that exit can wait for them.
#[derive(Default)]
struct InFlight {
    count: Mutex<usize>,
    idle: Condvar,
}

impl InFlight {
    fn start(&self) {
        *lock(&self.count) += 1;
    }

    fn finish(&self) {
        let mut count = lock(&self.count);
        *count = count.saturating_sub(1);
        self.idle.notify_all();
    }

    /// Waits until none is in flight, or `grace` passed; `true` when none is.
    fn wait(&self, grace: Duration) -> bool {
        let count = lock(&self.count);
        let (count, _) = self
            .idle
            .wait_timeout_while(count, grace, |n| *n > 0)
            .unwrap_or_else(PoisonError::into_inner);
        *count == 0
    }

    /// Waits for the receipts still being sent, for [`REPORT_GRACE`] at most.
    fn settle(&self) {
        if !self.wait(REPORT_GRACE) {
            eprintln!("writ: mcp-gateway: gave up waiting for receipts still being sent");
        }
    }
}

fn gateway(args: &McpGatewayArgs) -> Result<Exit, CliError> {
    let settings = settings(args)?;
    let inner = authorizer(args)?;

    let name = settings.name.clone();
    let (authorizer, make_gate): (SharedAuthorizer, GateFactory) = if settings.hide_denied_tools {
        let denied = Arc::new(Mutex::new(HashSet::new()));
        let seen = Arc::clone(&denied);
        let asker = Arc::clone(&inner);
        let make_gate: GateFactory = Arc::new(move || {
            let (seen, asker, name) = (Arc::clone(&seen), Arc::clone(&asker), name.clone());
            McpGate::new(name.clone()).with_tool_filter(Box::new(move |tool| {
                !lock(&seen).contains(tool) && could_be_permitted(asker.as_ref(), &name, tool)
            }))
        });
        let remembering = Remembering {
            inner,
            prefix: format!("mcp:{}/", settings.name),
            denied,
        };
        (Arc::new(remembering), make_gate)
    } else {
        (inner, Arc::new(move || McpGate::new(name.clone())))
    };

    let in_flight = Arc::new(InFlight::default());
    let exit = match settings.transport {
        Transport::Stdio { program, args } => {
            stdio::run(&program, &args, make_gate(), &authorizer, &in_flight)?
        }
        Transport::Http(http) => http::run(http, make_gate, &authorizer, &in_flight)?,
    };
    in_flight.settle();
    Ok(exit)
}

/// Logs the permits of calls the server never answered: their writs are spent.
fn report_unanswered(mcp: &McpGate) {
    for permit in mcp.drain_unanswered() {
        eprintln!(
            "writ: mcp-gateway: writ `{}` was consumed for a call the server never answered",
            permit.jti
        );
    }
}

/// Sends a receipt on a thread of its own, so a slow authority never holds up an answer.
fn send_report(authorizer: SharedAuthorizer, report: CallReport, in_flight: Arc<InFlight>) {
    in_flight.start();
    let spawned = thread::Builder::new().name("writ-receipt".into()).spawn({
        let in_flight = Arc::clone(&in_flight);
        move || {
            if let Err(e) = authorizer.report(&report.permit, &report.outcome) {
                eprintln!("writ: mcp-gateway: writ `{}`: {e}", report.permit.jti);
            }
            in_flight.finish();
        }
    });
    if let Err(e) = spawned {
        eprintln!("writ: mcp-gateway: cannot send a receipt: {e}");
        in_flight.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_are_plain() {
        assert!(valid_name("fs"));
        assert!(valid_name("docs-2.internal_x"));
        for bad in ["", "a/b", "a b", "fs:1", "é"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
