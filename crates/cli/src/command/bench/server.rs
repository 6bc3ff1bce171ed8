//! `writ serve` children on ephemeral loopback ports, in a temporary data dir, with a
//! benchmark agent and executor registered; stopped and removed on drop, whatever happened.
//!
//! Either one node on the embedded SQLite database, or N nodes on one fresh schema of a
//! PostgreSQL database (the first node makes the data dir, the others start on it together,
//! as an operator would run them); the schema is dropped at the end.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use writ_store::postgres::PgPrincipals;
use writ_store::{PgDatabase, PrincipalStore, Role, SqlitePrincipals};

use super::quota::{Confined, CpuQuota};
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

/// Running authority nodes; SIGTERM, then kill, on drop; then the PostgreSQL schema (if
/// any) is dropped and the data dir removed.
pub struct Spawned {
    children: Vec<Child>,
    /// `http://127.0.0.1:PORT` of each node, in start order.
    pub urls: Vec<String>,
    /// The agent's bearer token.
    pub token: String,
    /// The scratch schema and a connection to drop it with.
    schema: Option<(Arc<PgDatabase>, String)>,
    /// The nodes' cgroups under --node-cpus (removed once the nodes have stopped).
    confined: Vec<Confined>,
    // Dropped after the children are stopped (`Drop::drop` runs before the fields drop).
    _dir: tempfile::TempDir,
}

fn temp_dir() -> Result<tempfile::TempDir, CliError> {
    tempfile::Builder::new()
        .prefix("writ-bench-")
        .tempdir()
        .map_err(|e| CliError::Internal(format!("cannot create a temporary directory: {e}")))
}

impl Spawned {
    /// Starts one `writ serve` (this executable) on SQLite with the per-principal rate limit
    /// off.
    pub fn sqlite() -> Result<Spawned, CliError> {
        let dir = temp_dir()?;
        let data = dir.path().join("data");
        let (child, url) = start_node(&data, None)?;
        let mut spawned = Spawned {
            children: vec![child],
            urls: vec![url],
            token: String::new(),
            schema: None,
            confined: Vec::new(),
            _dir: dir,
        };
        // The first start created the database; principals go straight into it.
        let principals = SqlitePrincipals::open(&data.join(DATABASE_FILE))?;
        spawned.token = register(&principals, AGENT, Role::Agent)?;
        register(&principals, AUDIENCE, Role::Executor)?;
        Ok(spawned)
    }

    /// Starts `nodes` `writ serve` processes on a fresh, empty schema of the PostgreSQL
    /// database at `base_url`, sharing one data dir, with the per-principal rate limit off.
    pub fn postgres(base_url: &str, nodes: usize) -> Result<Spawned, CliError> {
        let unavailable = |e: writ_store::StoreError| {
            CliError::Unavailable(format!("the database is unavailable: {e}"))
        };
        let url = writ_store::postgres::scratch_url(base_url).map_err(unavailable)?;
        let dir = temp_dir()?;
        let data = dir.path().join("data");
        let mut spawned = Spawned {
            children: Vec::new(),
            urls: Vec::new(),
            token: String::new(),
            schema: None,
            confined: Vec::new(),
            _dir: dir,
        };
        // Connected before any node starts, so the schema is dropped whatever fails next.
        let db = PgDatabase::connect(&url).map_err(unavailable)?;
        match schema_name(&url) {
            Some(name) => spawned.schema = Some((db.clone(), name)),
            None => eprintln!("writ bench: warning: cannot tell the scratch schema from its URL; it is left behind"),
        }
        // The first node makes the data dir (keys, policy, admin token, config).
        let (child, first) = start_node(&data, Some(&url))?;
        spawned.children.push(child);
        spawned.urls.push(first);
        let principals = PgPrincipals::new(db);
        spawned.token = register(&principals, AGENT, Role::Agent)?;
        register(&principals, AUDIENCE, Role::Executor)?;
        // The others start together on it.
        let starting: Vec<_> = (1..nodes)
            .map(|_| {
                let (data, url) = (data.clone(), url.clone());
                std::thread::spawn(move || start_node(&data, Some(&url)))
            })
            .collect();
        let mut failed = None;
        for handle in starting {
            match handle.join() {
                Ok(Ok((child, url))) => {
                    spawned.children.push(child);
                    spawned.urls.push(url);
                }
                Ok(Err(e)) => failed = Some(e),
                Err(_) => failed = Some(CliError::Internal("a starting thread panicked".into())),
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(spawned),
        }
    }

    /// The PostgreSQL schema the nodes share (dropped on drop).
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_ref().map(|(_, name)| name.as_str())
    }

    /// The nodes' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// Caps each node's CPU at `quota` from now on.
    pub fn confine(&mut self, quota: &CpuQuota) -> Result<(), CliError> {
        for pid in self.pids() {
            self.confined.push(quota.confine(pid)?);
        }
        Ok(())
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        stop(&mut self.children);
        if let Some((db, schema)) = self.schema.take() {
            let drop_schema = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            let dropped = db.run(move |client| async move {
                client
                    .batch_execute(&drop_schema)
                    .await
                    .map_err(|e| writ_store::StoreError::Postgres(e.to_string()))
            });
            if let Err(e) = dropped {
                eprintln!("writ bench: warning: cannot drop the scratch schema {schema}: {e}");
            }
        }
    }
}

/// The schema a [`writ_store::postgres::scratch_url`] URL selects (`…search_path%3Dwrit_test_…`),
/// if it is one of those.
fn schema_name(url: &str) -> Option<String> {
    let (_, rest) = url.rsplit_once("search_path%3D")?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (name.starts_with("writ_test_") && name.len() > "writ_test_".len()).then_some(name)
}

/// Registers a principal and returns its token.
fn register(store: &dyn PrincipalStore, name: &str, role: Role) -> Result<String, CliError> {
    let token = crate::command::principals::new_token()?;
    let now = crate::input::now()?.as_secs();
    store.add(
        name,
        role,
        &[],
        &writ_core::Sha256Digest::of(token.as_bytes()),
        now,
    )?;
    Ok(token)
}

/// Starts `writ serve` (this executable) on `data` (created if absent) and waits until it
/// announces its address. On SQLite unless `database` names a PostgreSQL database.
fn start_node(data: &Path, database: Option<&str>) -> Result<(Child, String), CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Internal(format!("cannot find the writ executable: {e}")))?;
    let mut command = Command::new(exe);
    command
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--rate-limit-per-sec", "0"])
        .arg("--data-dir")
        .arg(data)
        // Warnings and errors only: the same server, whatever WRIT_LOG the caller has.
        .env("WRIT_LOG", "warn")
        // The database is the benchmark's choice, never the caller's environment's.
        .env_remove("WRIT_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(url) = database {
        command.args(["--database-url", url]);
    }
    let mut child = command
        .spawn()
        .map_err(|e| CliError::Unavailable(format!("cannot start `writ serve`: {e}")))?;
    let Some(stderr) = child.stderr.take() else {
        stop(std::slice::from_mut(&mut child));
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
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines_rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    return Ok((child, rest.trim().to_string()));
                }
                seen.push(line);
            }
            Err(e) => {
                stop(std::slice::from_mut(&mut child));
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
    }
}

/// SIGTERM to every child (graceful: in-flight requests finish), then SIGKILL to any that
/// lingers; reaps them.
fn stop(children: &mut [Child]) {
    let mut waiting = Vec::new();
    for child in children.iter_mut() {
        if let Ok(Some(_)) = child.try_wait() {
            continue;
        }
        let termed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if termed {
            waiting.push(child);
        } else {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    while !waiting.is_empty() && Instant::now() < deadline {
        waiting.retain_mut(|child| !matches!(child.try_wait(), Ok(Some(_))));
        std::thread::sleep(Duration::from_millis(20));
    }
    for child in waiting {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::schema_name;

    #[test]
    fn scratch_schema_names() {
        assert_eq!(
            schema_name("postgres://u@h/db?options=-c%20search_path%3Dwrit_test_0a1b").as_deref(),
            Some("writ_test_0a1b")
        );
        assert_eq!(
            schema_name("postgres://u@h/db?options=-c%20search_path%3Dwrit_test_0a1b&x=1")
                .as_deref(),
            Some("writ_test_0a1b")
        );
        assert_eq!(
            schema_name("postgres://u@h/db?options=-c%20search_path%3Dpublic"),
            None
        );
        assert_eq!(schema_name("postgres://u@h/db"), None);
    }
}
