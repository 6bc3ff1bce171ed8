//! `writ mcp-gateway`: an MCP server behind a gate, over the stdio transport.
//!
//! The gateway starts the server as its child and stands between it and the client (the agent
//! host that started the gateway): newline-delimited JSON-RPC on its own stdin and stdout to
//! the client, and on the child's stdin and stdout to the server; the child's stderr is the
//! gateway's. [`writ_gate::McpGate`] decides what each line becomes; this module only moves
//! bytes, asks the [`Authorizer`] (through `McpGate`) and sends receipts off the message path.
//!
//! Two pumps, one thread each: client → gate → server, and server → gate → client. The
//! gateway ends when the client closes its stdin (the child's stdin is closed and the child
//! waited for, then killed after a grace period) or when the server closes its stdout.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Read as _, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Deserialize;
use serde_json::json;
use writ_core::{Denial, DenyCode};
use writ_gate::{Action, Authorizer, CallReport, McpGate, Outcome, Permit, ReportError};

use crate::error::CliError;
use crate::exit::Exit;
use crate::gate;

/// The longest message accepted from the client (a `write_file` may carry a large file).
const MAX_CLIENT_LINE: usize = 64 << 20;
/// How long the server may take to exit once its stdin is closed, before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// How long receipts still being sent may hold up the gateway's exit.
const REPORT_GRACE: Duration = Duration::from_secs(10);

/// `writ mcp-gateway` (its description is on the `McpGateway` command in main.rs).
#[derive(Args)]
#[command(after_help = "\
Example (an MCP client's server entry):
  writ mcp-gateway --name fs --token-file ~/.config/writ/agent.token -- \\
      npx @modelcontextprotocol/server-filesystem /srv/data

Every `tools/call` is authorized as action `tools/call` on resource `mcp:<NAME>/<tool>` with
the call's `arguments`, by the gate configured in $XDG_CONFIG_HOME/writ/gate.toml (`writ gate
init`), asking for writs as the agent whose token is given. A denied call never reaches the
server: the client gets a tool error `writ denied: CODE: reason`.

--hide-denied-tools: writ cannot ask the authority whether a call would be permitted without
spending a writ, so this hides only the tools whose calls policy has already denied in this
session; every call is authorized on its own either way.

Exit statuses: 0 the client closed the session (or the server exited cleanly), 64 usage
error, 69 the server exited with a failure or the authority settings are unusable, 70
internal error.")]
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
    /// The MCP server's command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "SERVER_CMD")]
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
    program: OsString,
    args: Vec<OsString>,
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
    let mut command = args.command.iter().cloned();
    let program = command
        .next()
        .ok_or_else(|| CliError::Usage("no server command after `--`".into()))?;
    Ok(Settings {
        name,
        hide_denied_tools: args.hide_denied_tools || config.hide_denied_tools,
        program,
        args: command.collect(),
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
fn authorizer(args: &McpGatewayArgs) -> Result<Arc<dyn Authorizer + Send + Sync>, CliError> {
    let config = gate::load_config()?;
    let token = gate::agent_token(None, args.token_file.as_deref())?;
    Ok(Arc::new(gate::OnlineGate::new(&config, token)?))
}

/// Remembers the tools policy denied, for `--hide-denied-tools`.
struct Remembering {
    inner: Arc<dyn Authorizer + Send + Sync>,
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
}

/// What ended a pump.
enum Ended {
    /// The client closed our stdin (or it failed).
    Client,
    /// The server closed its stdout (or it failed).
    Server,
}

fn gateway(args: &McpGatewayArgs) -> Result<Exit, CliError> {
    let settings = settings(args)?;
    let authorizer = authorizer(args)?;

    let mut mcp = McpGate::new(settings.name.clone());
    let authorizer: Arc<dyn Authorizer + Send + Sync> = if settings.hide_denied_tools {
        let denied = Arc::new(Mutex::new(HashSet::new()));
        let seen = Arc::clone(&denied);
        mcp = mcp.with_tool_filter(Box::new(move |tool| !lock(&seen).contains(tool)));
        Arc::new(Remembering {
            inner: authorizer,
            prefix: format!("mcp:{}/", settings.name),
            denied,
        })
    } else {
        authorizer
    };
    let mcp = Arc::new(mcp);

    let mut child = Command::new(&settings.program)
        .args(&settings.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            CliError::Usage(format!(
                "cannot start the MCP server `{}`: {e}",
                settings.program.to_string_lossy()
            ))
        })?;
    let (Some(server_in), Some(server_out)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(CliError::Internal(
            "the MCP server's pipes are missing".into(),
        ));
    };

    let client_out = Arc::new(Mutex::new(io::stdout()));
    let in_flight = Arc::new(InFlight::default());
    let (ended, end) = mpsc::channel();

    {
        let (mcp, authorizer, client_out, ended) = (
            Arc::clone(&mcp),
            Arc::clone(&authorizer),
            Arc::clone(&client_out),
            ended.clone(),
        );
        thread::spawn(move || {
            if let Err(e) = client_pump(&mcp, authorizer.as_ref(), server_in, &client_out) {
                eprintln!("writ: mcp-gateway: client side: {e}");
            }
            let _ = ended.send(Ended::Client);
        });
    }
    {
        let (mcp, authorizer, client_out, in_flight) = (
            Arc::clone(&mcp),
            Arc::clone(&authorizer),
            Arc::clone(&client_out),
            Arc::clone(&in_flight),
        );
        thread::spawn(move || {
            if let Err(e) = server_pump(&mcp, &authorizer, server_out, &client_out, &in_flight) {
                eprintln!("writ: mcp-gateway: server side: {e}");
            }
            let _ = ended.send(Ended::Server);
        });
    }

    let exit = match end.recv() {
        // The server's stdin is closed (the client pump dropped it): let it finish answering
        // and exit, or kill it.
        Ok(Ended::Client) => {
            let _ = end.recv_timeout(EXIT_GRACE);
            let status = wait_or_kill(&mut child)?;
            if let Some(status) = status.filter(|s| !s.success()) {
                eprintln!("writ: mcp-gateway: the MCP server ended with {status}");
            }
            Exit::Success
        }
        Ok(Ended::Server) | Err(_) => match wait_or_kill(&mut child)? {
            Some(status) if status.success() => Exit::Success,
            status => {
                let how = status.map_or_else(|| "was killed".to_owned(), |s| format!("{s}"));
                eprintln!("writ: mcp-gateway: the MCP server ended: {how}");
                Exit::Unavailable
            }
        },
    };

    for permit in mcp.drain_unanswered() {
        eprintln!(
            "writ: mcp-gateway: writ `{}` was consumed for a call the server never answered",
            permit.jti
        );
    }
    if !in_flight.wait(REPORT_GRACE) {
        eprintln!("writ: mcp-gateway: gave up waiting for receipts still being sent");
    }
    let _ = lock(&client_out).flush();
    Ok(exit)
}

/// Waits for the child for [`EXIT_GRACE`], then kills it. `None`: it had to be killed.
fn wait_or_kill(child: &mut Child) -> Result<Option<ExitStatus>, CliError> {
    let deadline = Instant::now() + EXIT_GRACE;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(Some(status)),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(None);
            }
            Err(e) => {
                return Err(CliError::Internal(format!(
                    "cannot wait for the MCP server: {e}"
                )))
            }
        }
    }
}

/// Writes one line (and its newline) in one piece, then flushes.
fn write_line(out: &mut impl Write, line: &[u8]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line);
    buf.push(b'\n');
    out.write_all(&buf)?;
    out.flush()
}

/// One line read by [`read_line`].
enum Line {
    /// A whole line, without its newline, in the buffer.
    Whole,
    /// A line longer than allowed: skipped.
    TooLong,
    /// End of input.
    End,
}

/// Reads one line of at most `max` bytes into `buf` (without `\n` or `\r\n`).
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<Line> {
    buf.clear();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let n = reader.by_ref().take(limit).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(Line::End);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        return Ok(Line::Whole);
    }
    if n <= max {
        // The last line, without a newline.
        return Ok(Line::Whole);
    }
    // Skip the rest of the oversized line.
    buf.clear();
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(Line::TooLong);
        }
        if let Some(i) = chunk.iter().position(|&b| b == b'\n') {
            reader.consume(i + 1);
            return Ok(Line::TooLong);
        }
        let len = chunk.len();
        reader.consume(len);
    }
}

/// client → gate → server, until the client closes its side. Dropping `server_in` on
/// return closes the server's stdin.
fn client_pump(
    mcp: &McpGate,
    authorizer: &dyn Authorizer,
    mut server_in: ChildStdin,
    client_out: &Mutex<io::Stdout>,
) -> io::Result<()> {
    let mut reader = BufReader::with_capacity(64 << 10, io::stdin().lock());
    let mut line = Vec::new();
    loop {
        match read_line(&mut reader, &mut line, MAX_CLIENT_LINE)? {
            Line::End => return Ok(()),
            Line::TooLong => {
                let answer = json!({"jsonrpc": "2.0", "id": null, "error": {
                    "code": writ_gate::INVALID_REQUEST,
                    "message": format!("message longer than {MAX_CLIENT_LINE} bytes"),
                }});
                write_line(&mut *lock(client_out), answer.to_string().as_bytes())?;
            }
            Line::Whole if line.iter().all(u8::is_ascii_whitespace) => {}
            Line::Whole => {
                let step = mcp.on_client_line(&line, authorizer, Instant::now());
                for forward in &step.to_server {
                    write_line(&mut server_in, forward.as_bytes())?;
                }
                if let Some(answer) = step.to_client {
                    write_line(&mut *lock(client_out), answer.as_bytes())?;
                }
            }
        }
    }
}

/// server → gate → client, until the server closes its stdout. Receipts go out on their
/// own threads, so a slow authority never holds up an answer.
fn server_pump(
    mcp: &McpGate,
    authorizer: &Arc<dyn Authorizer + Send + Sync>,
    server_out: ChildStdout,
    client_out: &Mutex<io::Stdout>,
    in_flight: &Arc<InFlight>,
) -> io::Result<()> {
    let mut reader = BufReader::with_capacity(64 << 10, server_out);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let step = mcp.on_server_line(&line, Instant::now());
        match &step.replaced {
            Some(replaced) => write_line(&mut *lock(client_out), replaced.as_bytes())?,
            None => write_line(&mut *lock(client_out), &line)?,
        }
        for report in step.reports {
            send_report(Arc::clone(authorizer), report, Arc::clone(in_flight));
        }
    }
}

fn send_report(
    authorizer: Arc<dyn Authorizer + Send + Sync>,
    report: CallReport,
    in_flight: Arc<InFlight>,
) {
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

    fn lines(input: &[u8], max: usize) -> Vec<Option<Vec<u8>>> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            match read_line(&mut reader, &mut buf, max).unwrap() {
                Line::End => return out,
                Line::TooLong => out.push(None),
                Line::Whole => out.push(Some(buf.clone())),
            }
        }
    }

    #[test]
    fn lines_are_split_and_oversized_ones_skipped() {
        assert_eq!(
            lines(b"ab\r\ncdefghij\nk\n\nlast", 4),
            vec![
                Some(b"ab".to_vec()),
                None,
                Some(b"k".to_vec()),
                Some(vec![]),
                Some(b"last".to_vec())
            ]
        );
        assert_eq!(lines(b"abcd\nabcde", 4), vec![Some(b"abcd".to_vec()), None]);
    }

    #[test]
    fn server_names_are_plain() {
        assert!(valid_name("fs"));
        assert!(valid_name("docs-2.internal_x"));
        for bad in ["", "a/b", "a b", "fs:1", "é"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
