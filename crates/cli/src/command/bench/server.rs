//! A `writ serve` child on an ephemeral loopback port, in a temporary data dir, with a
//! benchmark agent and executor registered; stopped and removed on drop, whatever happened.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use writ_store::{Role, SqlitePrincipals};

use crate::datadir::DATABASE_FILE;
use crate::error::CliError;

/// The agent whose token the benchmark uses.
pub const AGENT: &str = "bench-agent";
/// The executor every request names as its audience.
pub const AUDIENCE: &str = "bench-gate";

/// How long a first start may take to announce where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server gets to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running authority; SIGTERM, then kill, on drop; then its data dir is removed.
pub struct Spawned {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The agent's bearer token.
    pub token: String,
    // Dropped after the child is stopped (`Drop::drop` runs before the fields drop).
    _dir: tempfile::TempDir,
}

impl Spawned {
    /// Starts `writ serve` (this executable) with the per-principal rate limit off.
    pub fn start() -> Result<Spawned, CliError> {
        let dir = tempfile::Builder::new()
            .prefix("writ-bench-")
            .tempdir()
            .map_err(|e| CliError::Internal(format!("cannot create a temporary directory: {e}")))?;
        let data = dir.path().join("data");
        let exe = std::env::current_exe()
            .map_err(|e| CliError::Internal(format!("cannot find the writ executable: {e}")))?;
        let mut child = Command::new(exe)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--rate-limit-per-sec", "0"])
            .arg("--data-dir")
            .arg(&data)
            // Warnings and errors only: the same server, whatever WRIT_LOG the caller has.
            .env("WRIT_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| CliError::Unavailable(format!("cannot start `writ serve`: {e}")))?;
        let Some(stderr) = child.stderr.take() else {
            stop(&mut child);
            return Err(CliError::Internal("no stderr pipe to `writ serve`".into()));
        };
        // One thread reads stderr for as long as the server runs, so it never blocks on a
        // full pipe; it hands lines over until the announcement has been seen.
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = lines_tx.send(line);
            }
        });
        let mut seen = Vec::new();
        let deadline = Instant::now() + START_TIMEOUT;
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        break rest.trim().to_string();
                    }
                    seen.push(line);
                }
                Err(e) => {
                    stop(&mut child);
                    let why = match e {
                        mpsc::RecvTimeoutError::Timeout => "did not announce its address in time",
                        mpsc::RecvTimeoutError::Disconnected => "exited",
                    };
                    return Err(CliError::Unavailable(format!(
                        "`writ serve` {why}{}{}",
                        if seen.is_empty() { "" } else { ":\n" },
                        seen.join("\n")
                    )));
                }
            }
        };
        drop(lines_rx);
        let mut spawned = Spawned {
            child,
            url,
            token: String::new(),
            _dir: dir,
        };
        // The first start created the database; principals go straight into it.
        let principals = SqlitePrincipals::open(&data.join(DATABASE_FILE))?;
        spawned.token = crate::command::principals::register(&principals, AGENT, Role::Agent, &[])?;
        crate::command::principals::register(&principals, AUDIENCE, Role::Executor, &[])?;
        Ok(spawned)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// SIGTERM (graceful: in-flight requests finish), then SIGKILL if it lingers; reaps it.
fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let termed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if termed {
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}
