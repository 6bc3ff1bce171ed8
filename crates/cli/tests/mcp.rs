//! `writ mcp-gateway` end to end: the real filesystem MCP server (npm
//! `@modelcontextprotocol/server-filesystem`, installed by `.ci/run` under
//! `target/mcp-test`), a real MCP client (the official Python SDK, pip `mcp`) and a raw
//! JSON-RPC script for batches, against a running `writ serve`. Over Streamable HTTP, the
//! reference "everything" server (npm `@modelcontextprotocol/server-everything`, in its
//! `streamableHttp` mode) stands upstream.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::server::{register, start, start_with, Server};
use crate::support::{status, writ_cmd};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The filesystem server's entry point, where `.ci/run` installs it.
fn fs_server() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../target/mcp-test/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js",
    )
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mcp")
        .join(name)
}

/// Whether node, the filesystem server and the Python SDK are here; `.ci/run` installs them,
/// so CI always runs these tests.
fn prerequisites() -> bool {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let sdk = Command::new("python3")
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|o| o.status.success());
    let ok = node && sdk && fs_server().exists();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have node, @modelcontextprotocol/server-filesystem and the Python mcp SDK \
             (installed by .ci/run)"
        );
        eprintln!(
            "skipped: needs node, `npm install --prefix target/mcp-test \
             @modelcontextprotocol/server-filesystem` and `pip install mcp` (see .ci/run)"
        );
    }
    ok
}

struct Setup {
    server: Server,
    agent_token: PathBuf,
    /// XDG_CONFIG_HOME of the gate.
    cfg: tempfile::TempDir,
    /// The directory the filesystem server serves.
    data: PathBuf,
    _data: tempfile::TempDir,
}

/// The example policies, plus: agents may read through `fs`, and nobody writes through it;
/// agents may call `echo` through `everything`, and nobody adds numbers through it.
fn apply_policy(server: &Server) {
    server.apply_examples_plus(
        r#"
@id("allow-everything-echo")
permit (
  principal,
  action == Writ::Action::"tools/call",
  resource == Writ::Tool::"mcp:everything/echo"
)
when { principal.role == "agent" };

@id("forbid-everything-sum")
@reason("no sums through the everything server")
forbid (
  principal,
  action == Writ::Action::"tools/call",
  resource == Writ::Tool::"mcp:everything/get-sum"
);

@id("allow-fs-read")
permit (
  principal,
  action == Writ::Action::"tools/call",
  resource == Writ::Tool::"mcp:fs/read_file"
)
when { principal.role == "agent" };

@id("forbid-fs-write")
@reason("no writes through the fs server")
forbid (
  principal,
  action == Writ::Action::"tools/call",
  resource == Writ::Tool::"mcp:fs/write_file"
);
"#,
    );
}

fn setup() -> Setup {
    setup_on(start())
}

/// As [`setup`], on a server already started (e.g. without a rate limit, for the benchmark).
fn setup_on(server: Server) -> Setup {
    let token = register(&server.d(), "mcp-agent", "agent");
    let agent_token = server.path("agent.token");
    std::fs::write(&agent_token, token).unwrap();
    apply_policy(&server);
    let cfg = tempfile::tempdir().unwrap();
    let out = writ_cmd()
        .args(["gate", "init", "--name", "gate-1", "--url", &server.url])
        .env("WRIT_TOKEN", server.admin_token())
        .env("XDG_CONFIG_HOME", cfg.path())
        .output()
        .unwrap();
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let data_dir = tempfile::tempdir().unwrap();
    let data = std::fs::canonicalize(data_dir.path()).unwrap();
    std::fs::write(data.join("hello.txt"), "hello from writ\n").unwrap();
    Setup {
        server,
        agent_token,
        cfg,
        data,
        _data: data_dir,
    }
}

impl Setup {
    /// `python3 SCRIPT ARGS -- writ mcp-gateway --name fs … -- node server DATA`.
    fn drive(&self, script_name: &str, args: &[&str]) -> Output {
        self.drive_with(script_name, args, &[])
    }

    /// As [`drive`](Self::drive), with more flags for the gateway.
    fn drive_with(&self, script_name: &str, args: &[&str], gateway: &[&str]) -> Output {
        let out = Command::new("python3")
            .arg(script(script_name))
            .args(args)
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_writ"))
            .args(["mcp-gateway", "--name", "fs"])
            .args(gateway)
            .arg("--token-file")
            .arg(&self.agent_token)
            .arg("--")
            .arg("node")
            .arg(fs_server())
            .arg(&self.data)
            .env("XDG_CONFIG_HOME", self.cfg.path())
            .env_remove("WRIT_TOKEN")
            .env_remove("WRIT_TOKEN_FILE")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        out
    }

    fn drive_json(&self, script_name: &str, args: &[&str]) -> Value {
        let out = self.drive(script_name, args);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                stderr(&out)
            )
        })
    }

    /// Every log entry.
    fn log(&self) -> Vec<Value> {
        let out = writ_cmd()
            .args([
                "log",
                "tail",
                "-n",
                "100000",
                "--json",
                "--data-dir",
                &self.server.d(),
            ])
            .output()
            .unwrap();
        assert_eq!(status(&out), 0, "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["entry"].clone())
            .collect()
    }

    /// Waits until the log holds `n` receipts (they are sent off the message path).
    fn receipts(&self, n: usize) -> Vec<Value> {
        for _ in 0..100 {
            let receipts: Vec<Value> = self
                .log()
                .into_iter()
                .filter(|e| e["type"] == "receipt")
                .collect();
            if receipts.len() >= n {
                return receipts;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("fewer than {n} receipts in the log: {:#?}", self.log());
    }
}

fn decisions(log: &[Value], decision: &str) -> usize {
    log.iter()
        .filter(|e| e["type"] == "decision" && e["decision"] == decision)
        .count()
}

#[test]
fn the_python_sdk_reads_through_the_gateway_and_is_denied_a_write() {
    if !prerequisites() {
        return;
    }
    let s = setup();
    let seen = s.drive_json("client.py", &[s.data.to_str().unwrap()]);
    assert!(
        seen["tools"]
            .as_array()
            .unwrap()
            .contains(&"read_file".into()),
        "{seen}"
    );
    assert_eq!(seen["read"]["isError"], false, "{seen}");
    assert_eq!(seen["read"]["text"], "hello from writ\n");
    assert_eq!(seen["write"]["isError"], true, "{seen}");
    let text = seen["write"]["text"].as_str().unwrap();
    assert!(
        text.starts_with("writ denied: missing_authorization: "),
        "{text}"
    );
    assert!(
        text.contains("forbid-fs-write"),
        "the policy is named: {text}"
    );
    assert!(
        !s.data.join("new.txt").exists(),
        "the server never saw the write"
    );

    let receipts = s.receipts(1);
    let log = s.log();
    assert_eq!(decisions(&log, "permit"), 1, "{log:#?}");
    assert_eq!(decisions(&log, "deny"), 1, "{log:#?}");
    assert_eq!(receipts.len(), 1, "{log:#?}");
}

#[test]
fn a_batch_is_split_between_the_server_and_the_gate() {
    if !prerequisites() {
        return;
    }
    let s = setup();
    let got = s.drive_json("raw.py", &["batch", s.data.to_str().unwrap()]);
    let read = &got["read"]["result"];
    assert_eq!(read["content"][0]["text"], "hello from writ\n", "{got}");
    assert_ne!(read["isError"], true, "{got}");
    let write = &got["write"]["result"];
    assert_eq!(write["isError"], true, "{got}");
    assert!(write["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("writ denied: missing_authorization: "));
    assert!(!s.data.join("batch.txt").exists());
    let receipts = s.receipts(1);
    let log = s.log();
    assert_eq!(decisions(&log, "permit"), 1, "{log:#?}");
    assert_eq!(decisions(&log, "deny"), 1, "{log:#?}");
    assert_eq!(receipts.len(), 1);
}

/// `--hide-denied-tools` lists only what policy could permit: here `read_file` (the test
/// policy permits it; `write_file` is forbidden, the rest has no permit). Nothing is logged.
#[test]
fn hidden_tools_are_those_policy_would_deny() {
    if !prerequisites() {
        return;
    }
    let s = setup();
    let size = s.log().len();
    let all: Vec<String> = serde_json::from_slice(&s.drive("raw.py", &["list"]).stdout).unwrap();
    assert!(
        all.len() > 3 && all.contains(&"write_file".to_string()),
        "{all:?}"
    );
    let shown: Vec<String> = serde_json::from_slice(
        &s.drive_with("raw.py", &["list"], &["--hide-denied-tools"])
            .stdout,
    )
    .unwrap();
    assert_eq!(shown, vec!["read_file".to_string()]);
    assert_eq!(s.log().len(), size, "a preview logs nothing");
}

/// Many calls in a row each get their own writ and receipt, and the latency the gate adds
/// per `tools/call` is printed beside the server's own (authorize and consume on the path,
/// the receipt off it). The figures come from a release run with more calls:
/// `WRIT_MCP_CALLS=150 cargo test --release -p writ --test main mcp::sequential -- --nocapture`.
#[test]
fn sequential_calls_each_get_a_writ_and_a_receipt() {
    if !prerequisites() {
        return;
    }
    let calls: usize = std::env::var("WRIT_MCP_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    // Calls as fast as they go, past the default per-principal rate limit.
    let s = setup_on(start_with(&["--rate-limit-per-sec", "0"]));
    let n = calls.to_string();
    let direct = Command::new("python3")
        .arg(script("raw.py"))
        .args(["bench", &n, s.data.to_str().unwrap(), "--", "node"])
        .arg(fs_server())
        .arg(&s.data)
        .output()
        .unwrap();
    assert!(direct.status.success(), "{}", stderr(&direct));
    let gated = s.drive("raw.py", &["bench", &n, s.data.to_str().unwrap()]);
    println!("direct: {}", String::from_utf8_lossy(&direct.stdout));
    println!("gated:  {}", String::from_utf8_lossy(&gated.stdout));
    // raw.py fails on any call that is not a plain result; each was authorized and reported.
    let log = s.log();
    assert_eq!(decisions(&log, "permit"), calls, "{log:#?}");
    assert_eq!(s.receipts(calls).len(), calls);
}

/// The everything server's entry point, where `.ci/run` installs it.
fn everything_server() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../target/mcp-test/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
    )
}

/// The tool policy forbids through `everything`, and arguments it takes.
const DENIED_TOOL: &str = "get-sum";
const DENIED_ARGS: &str = r#"{"a": 2, "b": 3}"#;

/// Whether what the Streamable HTTP tests need is here (as [`prerequisites`]).
fn http_prerequisites() -> bool {
    if !prerequisites() {
        return false;
    }
    let ok = everything_server().exists();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have @modelcontextprotocol/server-everything (installed by .ci/run)"
        );
        eprintln!(
            "skipped: needs `npm install --prefix target/mcp-test \
             @modelcontextprotocol/server-everything` (see .ci/run)"
        );
    }
    ok
}

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The everything server over Streamable HTTP, and its endpoint.
fn start_everything() -> (Running, String) {
    let port = free_port();
    let child = Command::new("node")
        .arg(everything_server())
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the everything server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (running, format!("http://127.0.0.1:{port}/mcp"))
}

impl Setup {
    /// `writ mcp-gateway --name everything --listen 127.0.0.1:0 --upstream UPSTREAM`, and
    /// the endpoint it announces. Its stderr is copied to ours.
    fn gateway_http(&self, upstream: &str) -> (Running, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_writ"))
            .args(["mcp-gateway", "--name", "everything", "--token-file"])
            .arg(&self.agent_token)
            .args(["--listen", "127.0.0.1:0", "--upstream", upstream])
            .env("XDG_CONFIG_HOME", self.cfg.path())
            .env_remove("WRIT_TOKEN")
            .env_remove("WRIT_TOKEN_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let running = Running(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                eprintln!("gateway: {line}");
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = tx.send(url);
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the gateway announces where it listens");
        (running, url)
    }

    /// `python3 SCRIPT URL echo {..} DENIED_TOOL {..}`, its stdout as JSON.
    fn drive_http(&self, script_name: &str, url: &str) -> Value {
        let out = Command::new("python3")
            .arg(script(script_name))
            .args([url, "echo", r#"{"message": "hello from writ"}"#])
            .args([DENIED_TOOL, DENIED_ARGS])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                stderr(&out)
            )
        })
    }
}

#[test]
fn the_python_sdk_calls_through_the_streamable_http_gateway_and_is_denied_a_tool() {
    if !http_prerequisites() {
        return;
    }
    let s = setup();
    let (_everything, upstream) = start_everything();
    let (_gateway, url) = s.gateway_http(&upstream);
    let seen = s.drive_http("client_http.py", &url);
    let tools = seen["tools"].as_array().unwrap();
    assert!(tools.contains(&"echo".into()), "{seen}");
    assert!(tools.contains(&DENIED_TOOL.into()), "{seen}");
    assert_eq!(seen["allowed"]["isError"], false, "{seen}");
    assert!(
        seen["allowed"]["text"]
            .as_str()
            .unwrap()
            .contains("hello from writ"),
        "the server answered: {seen}"
    );
    assert_eq!(seen["denied"]["isError"], true, "{seen}");
    let text = seen["denied"]["text"].as_str().unwrap();
    assert!(
        text.starts_with("writ denied: missing_authorization: "),
        "the gateway answered, not the server: {text}"
    );
    assert!(
        text.contains("forbid-everything-sum"),
        "the policy is named: {text}"
    );

    let receipts = s.receipts(1);
    let log = s.log();
    assert_eq!(decisions(&log, "permit"), 1, "{log:#?}");
    assert_eq!(decisions(&log, "deny"), 1, "{log:#?}");
    assert_eq!(receipts.len(), 1, "{log:#?}");
}

#[test]
fn a_batch_over_streamable_http_is_split_between_the_server_and_the_gate() {
    if !http_prerequisites() {
        return;
    }
    let s = setup();
    let (_everything, upstream) = start_everything();
    let (_gateway, url) = s.gateway_http(&upstream);
    let got = s.drive_http("raw_http.py", &url);
    let echo = &got["answers"]["1"]["result"];
    assert_ne!(echo["isError"], true, "{got}");
    assert!(
        echo["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("hello from writ"),
        "{got}"
    );
    let denied = &got["answers"]["2"]["result"];
    assert_eq!(denied["isError"], true, "{got}");
    assert!(denied["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("writ denied: missing_authorization: "));
    let receipts = s.receipts(1);
    let log = s.log();
    assert_eq!(decisions(&log, "permit"), 1, "{log:#?}");
    assert_eq!(decisions(&log, "deny"), 1, "{log:#?}");
    assert_eq!(receipts.len(), 1);
}

/// A Streamable HTTP server that answers in JSON and records every body it receives
/// (`tests/mcp/stub_http.py`), in `dir`; and its endpoint.
fn start_stub(dir: &Path) -> (Running, String) {
    let child = Command::new("python3")
        .arg(script("stub_http.py"))
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(port) = std::fs::read_to_string(dir.join("port")) {
            return (running, format!("http://127.0.0.1:{port}/mcp"));
        }
        assert!(Instant::now() < deadline, "the stub server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn over_streamable_http_json_answers_are_merged_and_the_server_never_sees_a_denied_call() {
    if !prerequisites() {
        return;
    }
    let s = setup();
    let stub_dir = tempfile::tempdir().unwrap();
    let (_stub, upstream) = start_stub(stub_dir.path());
    let (_gateway, url) = s.gateway_http(&upstream);
    let got = s.drive_http("raw_http.py", &url);
    assert_eq!(got["content_type"], "application/json", "{got}");
    let echo = &got["answers"]["1"]["result"];
    assert_eq!(echo["content"][0]["text"], "Echo: hello from writ", "{got}");
    let denied = &got["answers"]["2"]["result"];
    assert_eq!(denied["isError"], true, "{got}");
    assert!(denied["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("writ denied: missing_authorization: "));

    let seen: Vec<Value> = std::fs::read_to_string(stub_dir.path().join("seen.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let text = serde_json::to_string(&seen).unwrap();
    assert!(!text.contains(DENIED_TOOL), "the server saw: {text}");
    let batch = seen.last().unwrap();
    assert_eq!(batch["session"], "stub-session", "the session is passed on");
    assert_eq!(
        batch["body"],
        serde_json::json!([{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": "hello from writ"}}}]),
        "what remains of the batch is forwarded as a batch"
    );
    let receipts = s.receipts(1);
    let log = s.log();
    assert_eq!(decisions(&log, "permit"), 1, "{log:#?}");
    assert_eq!(decisions(&log, "deny"), 1, "{log:#?}");
    assert_eq!(receipts.len(), 1);
}
