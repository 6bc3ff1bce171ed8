//! The stdio transport: the gateway starts the server as its child and stands between it and
//! the client (the agent host that started the gateway): newline-delimited JSON-RPC on its own
//! stdin and stdout to the client, and on the child's stdin and stdout to the server; the
//! child's stderr is the gateway's.
//!
//! Two pumps, one thread each: client → gate → server, and server → gate → client. The
//! gateway ends when the client closes its stdin (the child's stdin is closed and the child
//! waited for, then killed after a grace period) or when the server closes its stdout.

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read as _, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use writ_gate::{Authorizer, McpGate};

use super::{lock, report_unanswered, send_report, InFlight, SharedAuthorizer};
use crate::error::CliError;
use crate::exit::Exit;

/// The longest message accepted from the client (a `write_file` may carry a large file).
const MAX_CLIENT_LINE: usize = 64 << 20;
/// How long the server may take to exit once its stdin is closed, before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// What ended a pump.
enum Ended {
    /// The client closed our stdin (or it failed).
    Client,
    /// The server closed its stdout (or it failed).
    Server,
}

/// Runs `program ARGS` behind the gate until the client or the server ends the session.
pub(super) fn run(
    program: &OsStr,
    args: &[std::ffi::OsString],
    mcp: McpGate,
    authorizer: &SharedAuthorizer,
    in_flight: &Arc<InFlight>,
) -> Result<Exit, CliError> {
    let mcp = Arc::new(mcp);
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            CliError::Usage(format!(
                "cannot start the MCP server `{}`: {e}",
                program.to_string_lossy()
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
    let (ended, end) = mpsc::channel();

    {
        let (mcp, authorizer, client_out, ended) = (
            Arc::clone(&mcp),
            Arc::clone(authorizer),
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
            Arc::clone(authorizer),
            Arc::clone(&client_out),
            Arc::clone(in_flight),
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

    report_unanswered(&mcp);
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
    authorizer: &SharedAuthorizer,
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
}
